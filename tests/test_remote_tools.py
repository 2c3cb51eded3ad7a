"""The remote backend passes tools through to a server that supports them: against our own server
(a tiny random model with Qwen 2.5's real template), the tool loop runs on a RemoteModel with the
same consent and results as on the local engine; streamed call deltas are put back together."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from chatgui.common.runner import CancelFlag
from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.common.types import SamplingSettings
from chatgui.engine.chat_model import load_model
from chatgui.engine.tool_loop import run_tool_loop
from chatgui.remote import RemoteModel
from chatgui.remote.tools import CallParts, wire_tool_choice
from chatgui.server import start_server
from tiny_gguf import write_tiny_model

TEMPLATE = Path(__file__).parent / "data" / "templates" / "qwen2.5-instruct.jinja"
WEATHER = ToolSpec("get_weather", "Current weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
                    "required": ["city"], "additionalProperties": False})
NOW = ToolSpec("now", "The time now.", {"type": "object", "properties": {}, "additionalProperties": False})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("remote-tools") / "qwen-tools.gguf"
    write_tiny_model(path, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden=64, context=4096,
                     chat_template=TEMPLATE.read_text())
    handle = start_server(load_model(path, device="cpu"), port=0, model_name="tiny")
    try:
        yield RemoteModel(handle.url, "tiny")
    finally:
        handle.stop()


def test_the_tool_loop_runs_on_a_remote_backend_with_consent(served):
    ran, asked, events = [], [], []

    def run(call):
        ran.append(call)
        return ToolResult(call.id, call.name, "rain, 12 C")

    for allow in (True, False):
        ran.clear()
        turn = run_tool_loop(served, [PromptMessage.user("Weather in Oslo?")], [WEATHER, NOW],
                             SamplingSettings(seed=11, max_new_tokens=200), run=run, parallel=False,
                             consent=lambda call: asked.append(call) or allow, tool_choice="get_weather",
                             max_rounds=1, on_event=lambda kind, value: events.append(kind), cancel=CancelFlag())
        assert turn.calls and all(c.name == "get_weather" and c.error is None for c in turn.calls)
        for c in turn.calls:
            jsonschema.validate(c.arguments, WEATHER.parameters)
        assert len(ran) == (len(turn.calls) if allow else 0)
        roles = [m.role for m in turn.messages]
        # the call, its result, and the server's answer to the result (a second request that
        # carried the assistant's tool_calls and the tool message)
        assert roles[0] == "assistant" and turn.messages[0].tool_calls and "tool" in roles
        assert roles[-1] == "assistant" and not turn.messages[-1].tool_calls
        results = [m.content for m in turn.messages if m.role == "tool"]
        assert results == (["rain, 12 C"] if allow else ["The user did not allow this call."])
        assert "call" in events and "result" in events and turn.rounds == 2
    assert len(asked) == 2


def test_a_remote_reply_without_tool_choice_gives_text_or_a_checked_call(served):
    content, calls, gen = served.reply_with_tools([PromptMessage.user("Hi")], [WEATHER],
                                                  SamplingSettings(seed=3, max_new_tokens=8), "none")
    assert calls == [] and content == gen.text


def test_streamed_and_whole_calls_are_put_together_and_checked():
    parts = CallParts()
    parts.take([{"index": 0, "id": "abcDEF123", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    for piece in ('{"ci', 'ty":', '"Oslo"}'):
        parts.take([{"index": 0, "function": {"arguments": piece}}])
    parts.take([{"index": 1, "id": "x2", "function": {"name": "get_weather", "arguments": '{"city": "Far too long"}'}}])
    parts.take([{"index": 2, "id": "x3", "function": {"name": "nope", "arguments": "{}"}}])
    parts.take([{"index": 3, "id": "x4", "function": {"name": "now", "arguments": "{oops"}}])
    calls = parts.calls([WEATHER, NOW])
    assert (calls[0].id, calls[0].name, calls[0].arguments, calls[0].error) == ("abcDEF123", "get_weather",
                                                                                {"city": "Oslo"}, None)
    assert "is too long" in calls[1].error
    assert "no tool named 'nope'" in calls[2].error
    assert "not valid JSON" in calls[3].error
    whole = CallParts()     # a server that does not stream: the message's list, without indexes
    whole.take([{"id": "a", "function": {"name": "now", "arguments": "{}"}},
                {"id": "b", "function": {"name": "now", "arguments": {}}}])
    assert [(c.id, c.error) for c in whole.calls([NOW])] == [("a", None), ("b", None)]
    with pytest.raises(TypeError):
        CallParts().take({"not": "a list"})


def test_earlier_calls_and_results_go_as_the_api_has_them():
    messages = [PromptMessage.user("Weather?"),
                PromptMessage.assistant("", [ToolCall("abcDEF123", "get_weather", {"city": "Oslo"})]),
                PromptMessage(Role.TOOL, "rain", tool_call_id="abcDEF123", name="get_weather")]
    wire = RemoteModel("localhost:1", "m").chat_payload(messages, SamplingSettings())["messages"]
    assert json.loads(wire[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert wire[2] == {"role": "tool", "content": "rain", "tool_call_id": "abcDEF123", "name": "get_weather"}
    assert wire_tool_choice("get_weather") == {"type": "function", "function": {"name": "get_weather"}}
    body = RemoteModel("localhost:1", "m").chat_payload(messages, SamplingSettings(), tools=[WEATHER],
                                                        tool_choice="required", parallel=False)
    assert body["tools"] == [WEATHER.to_openai()] and body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert "tools" not in RemoteModel("localhost:1", "m").chat_payload(messages, SamplingSettings())


def test_the_window_offers_tools_on_a_server_backend():
    from chatgui.ui.tools.tool_replies import supports_tools
    assert supports_tools(RemoteModel("localhost:1", "m"))
    assert not supports_tools(None)


def test_a_window_on_a_server_backend_calls_tools_with_the_same_consent(qtbot, make_window, served, monkeypatch):
    """The whole path in the window: connected to our own server, a reply calls the calculator
    (forced: a random model never calls by itself), the consent dialog asks, the call runs here
    and its card shows the result; the reply's meta keeps the call as on the local engine."""
    from PySide6.QtCore import Qt

    from chatgui.remote import secrets as remote_secrets
    from chatgui.store import AppSettings
    from chatgui.tools import builtin
    from chatgui.tools.calculator import calculate, format_number
    from chatgui.tools.consent import Decision
    from chatgui.ui.tools.tool_cards import cards_of

    monkeypatch.setattr(remote_secrets, "system_keyring", lambda: None)
    short = json.loads(json.dumps(builtin.CALCULATOR.parameters))
    short["properties"]["expression"]["maxLength"] = 10       # a random model closes a short string soon
    monkeypatch.setattr(builtin, "CALCULATOR", ToolSpec("calculator", builtin.CALCULATOR.description, short, "builtin"))
    window = make_window(settings=AppSettings(tools={"calculator": True, "max_rounds": 1}))
    group = window.backend.group
    group.kind.setCurrentIndex(group.kind.findData("openai"))
    group.kind.activated.emit(group.kind.currentIndex())
    group.base_url.setText(served.base_url)
    qtbot.mouseClick(group.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(group.refresh_button.isEnabled, timeout=10_000)
    qtbot.mouseClick(group.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None and window.model_controller.loaded.device == "remote",
                    timeout=30_000)
    window.tools.tool_choice = "calculator"
    window.panel.max_new_tokens.setValue(120)
    shown = []
    window.tools.asker.dialog_shown.connect(shown.append)
    window.input_bar.input.setPlainText("What is 2 + 3?")
    window.send_message()
    reply_id = window.replies.active.message_id

    def answer() -> bool:
        for dialog in window.tools.asker.open_dialogs():
            if not dialog.answered:
                dialog.buttons[Decision.ALLOW_ONCE].click()
        return not window.replies.busy
    qtbot.waitUntil(answer, timeout=90_000)
    meta = window.current.messages[reply_id].reply_meta
    assert shown and meta.tool_calls and meta.tool_results and meta.device == "remote"
    call, result = meta.tool_calls[0], meta.tool_results[0]
    assert call.name == "calculator" and result.call_id == call.id
    if not call.error:
        try:
            expected = format_number(calculate(call.arguments["expression"]))
        except Exception as e:     # noqa: BLE001 - the calculator's refusal is the expected result then
            expected = str(e)
        assert expected in result.content
    card = cards_of(window.view.widget_for(reply_id)).cards[call.id]
    assert card.result_text.toPlainText() == result.content

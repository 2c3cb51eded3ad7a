"""Tool calling in the window (issue 31): the Tools dialog, consent on the GUI thread while the
runner waits, call cards (live, saved, reloaded, exported), Stop, and an MCP server that dies
mid-call. A tiny random model never calls a tool by itself, so the first round's tool_choice is
forced (as the API's "required" or a tool's name does); the arguments it writes are its own."""
from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from PySide6.QtWidgets import QApplication

from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.common.records import ReplyMeta
from chatgui.session import tool_exchanges
from chatgui.store.settings import AppSettings, load_settings
from chatgui.tools import builtin
from chatgui.tools.calculator import CalculatorError, calculate, format_number
from chatgui.tools.consent import Decision
from chatgui.ui.tools.consent_dialog import ConsentAsker, ConsentDialog, pretty_arguments
from chatgui.ui.tools.tool_cards import ToolCallCard, cards_of
from chatgui.ui.tools.tool_settings import ToolSettings
from chatgui.ui.tools.tools_dialog import ToolsDialog
from test_ui import set_sampling
from tiny_gguf import write_tiny_model

REPLY_TIMEOUT_MS = 60_000
# An MCP server (the SDK's, as tests/test_mcp_client.py writes one) whose tools take arguments a
# random model writes in a few tokens.
SERVER = """
import os, time
from mcp.server.mcpserver import MCPServer

app = MCPServer("ui-test-tools")

@app.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two integers.\"\"\"
    return a + b

@app.tool()
def slow() -> str:
    \"\"\"Takes half a minute.\"\"\"
    time.sleep(30)
    return "late"

@app.tool()
def crash() -> str:
    \"\"\"Dies in the middle of the call.\"\"\"
    time.sleep(0.3)
    os._exit(3)

# No keys beyond the named ones: otherwise the schema lets a random model write made-up keys
# until the reply's length runs out (the SDK has no public switch for this).
for tool in ("add", "slow", "crash"):
    app._tool_manager.get_tool(tool).parameters["additionalProperties"] = False

if __name__ == "__main__":
    app.run("stdio")
"""


@pytest.fixture(scope="module")
def tools_model_path(tmp_path_factory):
    # a context long enough for the tools' descriptions (this byte-level vocabulary spells them out)
    return write_tiny_model(tmp_path_factory.mktemp("tools") / "tiny-tools.gguf", dim=32, n_layers=1, n_heads=2,
                            n_kv_heads=1, hidden=64, context=8192)


@pytest.fixture(scope="module")
def server_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("mcp") / "test_server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture
def tool_window(qtbot, tools_model_path, monkeypatch):
    monkeypatch.setenv("CHATGUI_MODEL", str(tools_model_path))
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow

    windows = []

    def make(tools: dict, tool_choice="auto"):
        window = MainWindow(settings=AppSettings(tools=tools))
        windows.append(window)
        window.resize(1200, 780)
        window.show()
        qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
        window.tools.tool_choice = tool_choice
        set_sampling(window, max_new_tokens=120, seed=7)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.engine.wait_closed(10_000)
        window.deleteLater()


def dialogs_shown(window) -> list:
    shown = []
    window.tools.asker.dialog_shown.connect(shown.append)
    return shown


def send(window, text):
    window.input_bar.input.setPlainText(text)
    window.send_message()
    return window.replies.active.message_id


def answer_every_call(qtbot, window, decision) -> int:
    """Answer each consent dialog (a reply may make several calls) until the reply ends."""
    answered = 0

    def step() -> bool:
        nonlocal answered
        for dialog in window.tools.asker.open_dialogs():
            if not dialog.answered:
                dialog.buttons[decision].click()
                answered += 1
        return not window.replies.busy
    qtbot.waitUntil(step, timeout=REPLY_TIMEOUT_MS)
    return answered


def calculator_says(arguments: dict) -> str:
    """What the calculator gives for these arguments (or the error it reports): computed here."""
    try:
        return format_number(calculate(arguments.get("expression", "")))
    except CalculatorError as e:
        return f"The calculator refused it: {e}"


# -- settings and the dialog ----------------------------------------------------------------
def test_tool_settings_read_bad_values_as_defaults():
    s = ToolSettings.from_dict({"calculator": "yes", "clock": True, "max_rounds": 99,
                                "consent": {"always": "all", "servers": ["files", 3]},
                                "mcp": {"mcpServers": {"ok": {"command": "srv"}, "bad": {"url": "ftp://x"}}}})
    assert (s.calculator, s.clock, s.history, s.max_rounds) == (False, True, False, 5)
    assert [c.name for c in s.servers] == ["ok"]                 # the bad entry is left out
    assert s.consent == {"always": [], "servers": ["files"]}     # never allows more than saved
    assert ToolSettings.from_dict(s.to_dict()) == s
    assert not ToolSettings().any_enabled() and s.any_enabled()


def test_the_tools_dialog_imports_mcp_json_and_keeps_the_allow_list(qtbot, tmp_path):
    dialog = ToolsDialog(ToolSettings(clock=True))
    qtbot.addWidget(dialog)
    assert dialog.clock.isChecked() and not dialog.calculator.isChecked()   # off by default
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"files": {"command": "npx", "args": ["-y", "fs", "/tmp"]},
                                                 "web": {"url": "http://127.0.0.1:9/mcp"}}}))
    assert [c.name for c in dialog.import_file(config)] == ["files", "web"]
    assert dialog.server_list.count() == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"mcpServers": {"x": {}}}')
    with pytest.raises(ValueError, match="'command'"):
        dialog.import_file(broken)
    assert dialog.server_list.count() == 2                      # nothing added by a bad file
    dialog.server_list.setCurrentRow(0)
    dialog.allow_server.setChecked(True)
    dialog.server_list.setCurrentRow(1)
    assert not dialog.allow_server.isChecked()
    dialog.remove_server()
    dialog.calculator.setChecked(True)
    dialog.max_rounds.setValue(3)
    s = dialog.result_settings()
    assert [c.name for c in s.servers] == ["files"] and s.consent["servers"] == ["files"]
    assert (s.calculator, s.max_rounds) == (True, 3)


def test_a_server_that_cannot_start_says_so_in_one_sentence(qtbot):
    dialog = ToolsDialog(ToolSettings.from_dict({"mcp": {"mcpServers": {"gone": {"command": "/nonexistent/srv"}}}}))
    qtbot.addWidget(dialog)
    dialog.check_servers()
    qtbot.waitUntil(lambda: dialog.server_info.text().startswith("Failed"), timeout=30_000)
    assert "gone" in dialog.server_info.text() and "\n" not in dialog.server_info.text()


# -- consent across threads ------------------------------------------------------------------
def test_consent_blocks_the_asking_thread_until_answered_and_stop_denies(qtbot):
    asker = ConsentAsker()
    shown = []
    asker.dialog_shown.connect(shown.append)
    spec = ToolSpec("add", "Add two integers.", source="mcp:test")
    call = ToolCall("abcdefghi", "add", {"a": 2, "b": 40})
    answers = []
    thread = threading.Thread(target=lambda: answers.append(asker.ask_for(None)(call, spec)))
    thread.start()
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    dialog = shown[0]
    assert isinstance(dialog, ConsentDialog) and json.loads(dialog.arguments.toPlainText()) == {"a": 2, "b": 40}
    time.sleep(0.2)
    assert thread.is_alive()                                   # the runner waits for the answer
    dialog.buttons[Decision.ALLOW_CHAT].click()
    thread.join(5)
    assert answers == [Decision.ALLOW_CHAT]

    from chatgui.common.runner import CancelFlag
    flag = CancelFlag()
    thread = threading.Thread(target=lambda: answers.append(asker.ask_for(flag)(call, spec)))
    thread.start()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=5000)
    flag.set()                                                 # Stop
    thread.join(5)
    assert answers[-1] == Decision.DENY
    qtbot.waitUntil(lambda: not asker.open_dialogs(), timeout=5000)   # its dialog closed


def test_cards_show_saved_calls_and_their_states(qtbot):
    meta = {"tool_calls": [ToolCall("a" * 9, "calculator", {"expression": "1+1"}).to_dict(),
                           ToolCall("b" * 9, "calculator", {"expression": "2"}).to_dict(), {"bad": 1}],
            "tool_results": [ToolResult("a" * 9, "calculator", "2", False, 0.01).to_dict(),
                             ToolResult("b" * 9, "calculator", "The user did not allow this call.", True).to_dict()]}
    pairs = tool_exchanges(ReplyMeta.from_dict(meta))
    assert [c.id for c, _r in pairs] == ["a" * 9, "b" * 9]      # a damaged record is left out
    cards = [ToolCallCard(c, r) for c, r in pairs]
    for card in cards:
        qtbot.addWidget(card)
    assert [c.state for c in cards] == ["done", "denied"]
    assert "denied" in cards[1].title() and cards[0].result_text.toPlainText() == "2"


# -- the window ------------------------------------------------------------------------------
def test_consent_deny_then_allow_cards_reload_and_export(qtbot, tool_window, monkeypatch, tmp_path):
    ran = []
    real = builtin.run_calculator
    monkeypatch.setattr(builtin, "run_calculator", lambda args: ran.append(args) or real(args))
    # A short expression: a random model under the schema closes the string soon (the real one allows 500).
    short = json.loads(json.dumps(builtin.CALCULATOR.parameters))
    short["properties"]["expression"]["maxLength"] = 10
    monkeypatch.setattr(builtin, "CALCULATOR", ToolSpec("calculator", builtin.CALCULATOR.description, short, "builtin"))
    window = tool_window({"calculator": True, "max_rounds": 1}, tool_choice="calculator")
    shown = dialogs_shown(window)

    reply_id = send(window, "What is 2 + 3?")
    qtbot.waitUntil(lambda: bool(shown), timeout=REPLY_TIMEOUT_MS)
    dialog = shown[0]
    call = window.current.messages[reply_id].meta.tool_calls[0]
    assert dialog.arguments.toPlainText() == pretty_arguments(call.arguments)
    answer_every_call(qtbot, window, Decision.DENY)
    assert ran == []                                           # nothing ran
    calls = window.current.messages[reply_id].meta.tool_calls
    cards = cards_of(window.view.widget_for(reply_id)).cards
    assert len(cards) == len(calls) and all(card.state == "denied" and "denied" in card.title()
                                            for card in cards.values())

    reply_id = send(window, "And 7 * 6?")
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=REPLY_TIMEOUT_MS)
    answer_every_call(qtbot, window, Decision.ALLOW_ONCE)
    meta = window.current.messages[reply_id].meta
    call = meta.tool_calls[0]
    # recorded as any reply is (session/replies.py): its prompt with the tools, every round's tokens
    assert meta.prompt_tokens > 0 and meta.tokens and meta.tool_rounds == 2 and meta.model_path
    # each allowed call ran, once (a call the reply cut off is not run: its card says why)
    assert ran == [c.arguments for c in meta.tool_calls if not c.error]
    card = cards_of(window.view.widget_for(reply_id)).cards[call.id]
    assert card.result_text.toPlainText() == calculator_says(call.arguments)
    assert card.state in ("done", "error")

    chat_id = window.current.id
    window.save_chat(window.current)
    window.library.flush(5)
    window.new_chat()
    window.open_chat(chat_id)                                  # drawn again from what was saved
    reloaded = cards_of(window.view.widget_for(reply_id), create=False)
    assert reloaded is not None and reloaded.cards[call.id].result_text.toPlainText() == calculator_says(call.arguments)
    stored = window.store.load(chat_id)
    assert stored.messages[reply_id].meta.tool_calls == meta.tool_calls
    markdown = window.store.export_markdown(stored)
    assert "Tool call: `calculator`" in markdown and calculator_says(call.arguments) in markdown
    assert json.loads(window.store.export_json(stored))   # the JSON export carries the meta as is


def test_always_is_saved_and_replay_reuses_the_stored_results(qtbot, tool_window, monkeypatch):
    ran = []
    monkeypatch.setattr(builtin, "run_clock", lambda args: ran.append(args) or f"Monday, call {len(ran)}")
    window = tool_window({"clock": True, "max_rounds": 1}, tool_choice="current_datetime")
    shown = dialogs_shown(window)
    send(window, "What time is it?")
    qtbot.waitUntil(lambda: bool(shown), timeout=REPLY_TIMEOUT_MS)
    assert answer_every_call(qtbot, window, Decision.ALLOW_ALWAYS) == 1   # not asked again in the reply
    window.autosave.flush()
    assert load_settings().tools["consent"]["always"] == ["builtin/current_datetime"]
    send(window, "And now?")                                   # asked no more
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    assert len(shown) == 1
    reply_id = window.current.active_path()[-1].id
    results = window.current.messages[reply_id].meta.tool_results
    assert results and not results[0].is_error
    runs = len(ran)
    qtbot.waitUntil(lambda: bool(window.current.messages[reply_id].meta.model_sha256), timeout=10_000)
    replay_id = window.explain.replay(reply_id)
    assert replay_id is not None
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    replayed = window.current.messages[replay_id]
    assert len(ran) == runs                                    # the tools were not run again
    assert [r.content for r in replayed.meta.tool_results] == [r.content for r in results]
    assert replayed.content == window.current.messages[reply_id].content   # same seed, same results: same reply


def test_stop_while_asking_denies_and_the_window_goes_on(qtbot, tool_window, monkeypatch):
    ran = []
    monkeypatch.setattr(builtin, "run_clock", lambda args: ran.append(args) or "Monday")
    window = tool_window({"clock": True, "max_rounds": 1}, tool_choice="current_datetime")
    shown = dialogs_shown(window)
    reply_id = send(window, "What day is it?")
    qtbot.waitUntil(lambda: bool(shown), timeout=REPLY_TIMEOUT_MS)
    window.stop_reply()
    qtbot.waitUntil(lambda: not window.tools.asker.open_dialogs(), timeout=5000)
    qtbot.waitUntil(lambda: window.engine.runner.waiting == 0 and not window.engine.runner.busy, timeout=10_000)
    assert not window.replies.busy and ran == []              # Stop was a denial: nothing ran
    qtbot.waitUntil(lambda: bool(window.current.messages.get(reply_id) is None
                                 or window.current.messages[reply_id].meta.tool_results), timeout=10_000)


def test_an_mcp_server_killed_mid_call_gives_a_plain_error(qtbot, tool_window, server_script):
    tools = {"mcp": {"mcpServers": {"test": {"command": sys.executable, "args": [str(server_script)]}}},
             "consent": {"servers": ["test"]}, "max_rounds": 1}          # allowed: no dialog
    window = tool_window(tools, tool_choice="crash")
    shown = dialogs_shown(window)
    reply_id = send(window, "Crash, please")
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    assert not shown
    results = window.current.messages[reply_id].meta.tool_results
    assert results and results[0].is_error
    assert "crash" in results[0].content and "Traceback" not in results[0].content
    card = cards_of(window.view.widget_for(reply_id)).cards[results[0].call_id]
    assert card.state == "error"
    window.tools.tool_choice = "add"                          # the server starts again; the app is fine
    reply_id = send(window, "Add")
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    meta = window.current.messages[reply_id].meta
    args = meta.tool_calls[0].arguments
    assert meta.tool_results[0].content == str(args["a"] + args["b"])
    QApplication.processEvents()


def test_stop_ends_a_running_tool(qtbot, tool_window, server_script):
    tools = {"mcp": {"mcpServers": {"test": {"command": sys.executable, "args": [str(server_script)]}}},
             "consent": {"servers": ["test"]}, "max_rounds": 1}
    window = tool_window(tools, tool_choice="slow")
    reply_id = send(window, "Take your time")
    qtbot.waitUntil(lambda: bool(window.current.messages[reply_id].meta.tool_calls), timeout=REPLY_TIMEOUT_MS)
    time.sleep(0.5)
    t0 = time.perf_counter()
    window.stop_reply()
    qtbot.waitUntil(lambda: not window.engine.runner.busy, timeout=10_000)
    assert time.perf_counter() - t0 < 10                       # not the tool's 30 s
    qtbot.waitUntil(lambda: bool(window.current.messages.get(reply_id) is None
                                 or window.current.messages[reply_id].meta.tool_results), timeout=5000)
    message = window.current.messages.get(reply_id)
    if message is not None:
        assert message.meta.tool_results[0].content == "The call was stopped."


def test_the_history_tool_finds_excerpts_of_earlier_chats_from_another_thread():
    from chatgui.store import HistoryStore
    from chatgui.session import Chat
    from chatgui.tools.builtin import history_runner
    from chatgui.ui.tools.tool_replies import history_search

    store = HistoryStore()
    chat = Chat(title="Garden")
    chat.append("user", "When should I plant the tulip bulbs?")
    chat.append("assistant", "Plant tulip bulbs in autumn, before the ground freezes.")
    store.save(chat)
    run = history_runner(history_search(store))
    out = []
    thread = threading.Thread(target=lambda: out.append(run({"query": "tulip", "limit": 5})))   # as the runner does
    thread.start()
    thread.join(10)
    assert "Garden" in out[0] and "autumn" in out[0]
    assert "No earlier message" in run({"query": "cactus"})

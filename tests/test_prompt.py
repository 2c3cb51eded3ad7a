"""common/prompt.py PromptMessage: what a model is sent, typed from the session, the server and the
remote client to the engine; its two edges (the template's dicts, the OpenAI wire form)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatgui.common.prompt import PromptFormatError, PromptMessage, Role
from chatgui.common.tools import ToolCall, ToolResult
from chatgui.engine.chat_template import ChatTemplate
from chatgui.engine.tool_calls import detect_format, render_with_tools

TEMPLATES = Path(__file__).parent / "data" / "templates"
CALL = ToolCall("abcDEF123", "get_weather", {"city": "Oslo", "days": [1, 2]})

# A tool-call conversation as an OpenAI client sends it back (the arguments as JSON text).
WIRE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "abcDEF123", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "days": [1, 2]}'}}]},
    {"role": "tool", "content": "rain, 12 C", "tool_call_id": "abcDEF123", "name": "get_weather"},
    {"role": "assistant", "content": "Rain, 12 C."},
    {"role": "user", "content": "And tomorrow?"},
]
TYPED = [PromptMessage.system("Be brief."), PromptMessage.user("Weather in Oslo?"), PromptMessage.assistant("", [CALL]),
         PromptMessage.tool_result(ToolResult("abcDEF123", "get_weather", "rain, 12 C")),
         PromptMessage.assistant("Rain, 12 C."), PromptMessage.user("And tomorrow?")]
# The same conversation as session/history.py and tool_calls.template_messages built it for a
# template before PromptMessage (the call's arguments as an object).
TEMPLATE_DICTS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "abcDEF123", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": [1, 2]}}}]},
    {"role": "tool", "content": "rain, 12 C", "tool_call_id": "abcDEF123", "name": "get_weather"},
    {"role": "assistant", "content": "Rain, 12 C."},
    {"role": "user", "content": "And tomorrow?"},
]


def test_a_tool_call_conversation_goes_wire_to_typed_to_wire_unchanged():
    typed = [PromptMessage.from_wire(m, f"messages[{i}]") for i, m in enumerate(WIRE)]
    assert typed == TYPED
    assert [m.to_wire() for m in typed] == WIRE
    assert [json.loads(json.dumps(m.to_wire())) for m in typed] == WIRE      # plain JSON all through


def test_the_wire_forms_a_client_may_use_read_as_one_message():
    parts = {"role": "developer", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]}
    assert PromptMessage.from_wire(parts) == PromptMessage.system("Be brief.")
    as_object = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "abcDEF123", "type": "function", "function": {"name": "get_weather", "arguments": CALL.arguments}}]}
    assert PromptMessage.from_wire(as_object) == PromptMessage.assistant("", [CALL])
    no_id = PromptMessage.from_wire({"role": "assistant", "tool_calls": [{"function": {"name": "now"}}]})
    assert no_id.tool_calls[0].id and no_id.tool_calls[0].arguments == {}   # an id given, arguments empty


@pytest.mark.parametrize("message,error", [
    ("hi", "messages[3] must be an object with 'role' and 'content'."),
    ({"role": "robot", "content": "x"}, "messages[3]: role 'robot' is not supported (use system, user or assistant)."),
    ({"role": "user", "content": 5}, "messages[3]: 'content' must be a string or a list of text parts."),
    ({"role": "user", "content": [{"type": "image_url"}]}, "messages[3]: only text content is supported."),
    ({"role": "user", "content": "a\ud800b"}, "messages[3] holds a lone surrogate"),
    ({"role": "tool", "content": "x"}, "messages[3]: a tool message needs 'tool_call_id'."),
    ({"role": "tool", "content": 5, "tool_call_id": "a"}, "messages[3]: 'content' must be a string."),
    ({"role": "assistant", "tool_calls": "x"}, "messages[3]: 'tool_calls' must be a non-empty list."),
    ({"role": "assistant", "tool_calls": [{"function": {}}]}, "messages[3]: each tool call needs a function name."),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]},
     "messages[3]: a tool call's 'arguments' is not valid JSON."),
    ({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]},
     "messages[3]: a tool call's 'arguments' must be a JSON object."),
])
def test_a_bad_wire_message_says_which_and_what_is_wrong(message, error):
    with pytest.raises(PromptFormatError) as e:
        PromptMessage.from_wire(message, "messages[3]")
    assert str(e.value).startswith(error)


def test_roles_are_typed_and_a_wrong_one_is_refused():
    assert PromptMessage("user", "hi").role is Role.USER
    with pytest.raises(ValueError):
        PromptMessage("robot", "hi")
    assert PromptMessage.assistant("x", [CALL]).text_only() == PromptMessage.assistant("x")


@pytest.mark.parametrize("file", ["qwen2.5-instruct.jinja", "llama-3.1-instruct.jinja",
                                  "mistral-nemo-instruct-2407.jinja", "openai-gpt-oss-120b.jinja",
                                  "ibm-granite-granite-3.3-2B-Instruct.jinja", None])
def test_typed_messages_render_as_the_dicts_did(file):
    """The template gets the same messages it got as dicts: the plain text path (ChatTemplate.render)
    and the path with tools (render_with_tools), in real templates of several families."""
    source = (TEMPLATES / file).read_text() if file else None
    template = ChatTemplate(source, "<s>", "</s>")
    fixed = {"strftime_now": lambda fmt: "14 March 2026"}
    plain = [TYPED[i] for i in (0, 1, 4, 5)]                  # the text-only path: no tool turns
    plain_dicts = [TEMPLATE_DICTS[i] for i in (0, 1, 4, 5)]
    assert template.render(plain, **fixed) == template.render_dicts(plain_dicts, **fixed)
    if file in ("qwen2.5-instruct.jinja", "llama-3.1-instruct.jinja", "mistral-nemo-instruct-2407.jinja"):
        # these render earlier calls from the dicts' own fields: the same text from the typed ones
        from test_tool_calls import WEATHER
        with_tools = render_with_tools(template, TYPED, [WEATHER], detect_format(source))
        listed = [WEATHER.to_openai()]
        assert with_tools == template.render_dicts(TEMPLATE_DICTS, add_generation_prompt=True, tools=listed)
        assert '"city": "Oslo"' in with_tools and "rain, 12 C" in with_tools

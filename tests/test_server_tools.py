"""Tool calling through /v1/chat/completions with the official `openai` client, used exactly as
its tool-calling example does, against a tiny random model with Qwen 2.5's real template."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import openai
import pytest

from chatgui.engine.chat_model import load_model
from chatgui.server import start_server
from tiny_gguf import write_tiny_model

TEMPLATE = Path(__file__).parent / "data" / "templates" / "qwen2.5-instruct.jinja"
WEATHER_PARAMS = {"type": "object", "properties": {"location": {"type": "string", "maxLength": 8},
                                                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                  "required": ["location", "unit"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_current_weather", "description": "Get the current weather",
                                           "parameters": WEATHER_PARAMS}},
         {"type": "function", "function": {"name": "get_time", "description": "The time now",
                                           "parameters": {"type": "object", "properties": {},
                                                          "additionalProperties": False}}}]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("served") / "qwen-tools.gguf"
    write_tiny_model(path, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden=64, context=4096,
                     chat_template=TEMPLATE.read_text())
    handle = start_server(load_model(path, device="cpu"), port=0, model_name="tiny")
    try:
        yield openai.OpenAI(base_url=handle.url, api_key="not-needed", max_retries=0, timeout=120)
    finally:
        handle.stop()


def check_calls(calls) -> None:
    assert calls
    for call in calls:
        assert call.type == "function" and call.id
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_the_openai_tool_calling_example_works_unchanged(client):
    messages = [{"role": "user", "content": "What's the weather like in Paris today?"}]
    response = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, tool_choice="required",
                                              max_tokens=200, seed=1)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    check_calls(choice.message.tool_calls)
    messages.append(choice.message)                       # the example appends the message object itself
    for call in choice.message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id,
                         "content": json.dumps({"temperature": 22, "unit": "celsius"})})
    final = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=8, seed=2)
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_a_named_function_is_the_one_called(client):
    response = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Time?"}], tools=TOOLS, max_tokens=200, seed=3,
        tool_choice={"type": "function", "function": {"name": "get_time"}}, parallel_tool_calls=False)
    calls = response.choices[0].message.tool_calls
    check_calls(calls)
    assert [c.function.name for c in calls] == ["get_time"]
    assert response.choices[0].message.content is None


def test_streamed_tool_calls_arrive_as_deltas(client):
    """As OpenAI streams them: a call's first delta has its id, type and name (arguments empty),
    the following ones pieces of its arguments only, in several pieces."""
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Weather in Oslo?"}],
                                            tools=TOOLS, tool_choice="required", max_tokens=200, seed=4, stream=True)
    calls, finish, pieces = {}, None, {}
    for chunk in stream:
        delta = chunk.choices[0].delta
        for tc in delta.tool_calls or ():
            if tc.index not in calls:
                assert tc.id and tc.type == "function" and tc.function.name and tc.function.arguments == ""
            else:
                assert tc.id is None and tc.function.name is None and tc.function.arguments
                pieces[tc.index] = pieces.get(tc.index, 0) + 1
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += tc.function.name or ""
            entry["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and calls
    for index, entry in calls.items():
        jsonschema.validate(json.loads(entry["arguments"]), SCHEMAS[entry["name"]])
        if entry["name"] == "get_current_weather":
            assert pieces[index] > 1          # streamed as written, not whole at the end


def test_the_openai_streaming_helper_assembles_the_calls(client):
    """The `openai` package's own streaming helper (its tool-calling streaming example): the
    argument delta events, then each call done with the same arguments as the final message."""
    deltas, done = [], []
    # (the helper is client.chat.completions.stream in current releases, under .beta before)
    stream_call = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
    with stream_call(model="tiny", messages=[{"role": "user", "content": "Weather in Rome?"}], tools=TOOLS,
                     tool_choice={"type": "function", "function": {"name": "get_current_weather"}},
                     max_tokens=200, seed=8) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.delta":
                deltas.append(event.arguments_delta)
            elif event.type == "tool_calls.function.arguments.done":
                done.append((event.name, event.arguments))
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.id
    assert done == [("get_current_weather", call.function.arguments)] and "".join(deltas) == call.function.arguments
    assert len(deltas) > 1
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS["get_current_weather"])


def test_none_and_auto_give_text_when_the_model_writes_text(client):
    for choice in ("none", "auto"):
        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}], tools=TOOLS,
                                           tool_choice=choice, max_tokens=6, seed=5)
        msg = r.choices[0].message
        if choice == "none":
            assert not msg.tool_calls and isinstance(msg.content, str)
        elif msg.tool_calls:     # a random model may or may not open a call; whichever it did is well formed
            assert r.choices[0].finish_reason == "tool_calls"
            check_calls(msg.tool_calls)
        else:
            assert isinstance(msg.content, str) and r.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("kw, param", [
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools"),
    ({"tools": [{"type": "retrieval"}]}, "tools"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "x": {"type": "string", "pattern": "(?<=a)b"}}}}}], "tool_choice": "required"}, "tools"),
])
def test_bad_tools_are_400_naming_the_field(client, kw, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=2, **kw)
    assert info.value.param == param


def test_several_candidates_each_call(client):
    response = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Weather?"}],
                                              tools=TOOLS, tool_choice="required", max_tokens=200, seed=6, n=2,
                                              parallel_tool_calls=False)
    assert len(response.choices) == 2
    for choice in response.choices:
        assert choice.finish_reason == "tool_calls"
        check_calls(choice.message.tool_calls)
        assert len(choice.message.tool_calls) == 1

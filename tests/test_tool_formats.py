"""The call formats of gpt-oss (harmony), Gemma 4 and Phi-4-mini: their real templates render tools,
calls and results; what the templates write back parses; and tiny random models carrying those
templates (their markers as single control tokens, as the real vocabularies hold them) produce
calls that parse and validate under the constraint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.engine.chat_model import load_model
from chatgui.engine.chat_template import ChatTemplate
from chatgui.engine.gemma_calls import GemmaSyntaxError, gemma_literal, parse_value
from chatgui.engine.tool_calls import (FUNCTOOLS, GEMMA4, GRANITE, HARMONY, PHI4, CallTextFilter, detect_format,
                                       render_with_tools, split_tool_calls, tool_constraint)
from forced_calls import forced_call_problems
from tiny_gguf import write_tiny_model

TEMPLATES = Path(__file__).parent / "data" / "templates"
FAMILIES = {
    "harmony": ("openai-gpt-oss-120b.jinja", HARMONY,
                ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|call|>", "<|constrain|>")),
    "gemma4": ("google-gemma-4-31B-it-interleaved.jinja", GEMMA4,
               ("<|turn>", "<turn|>", "<|tool>", "<tool|>", "<|tool_call>", "<tool_call|>", '<|"|>',
                "<|tool_response>", "<tool_response|>", "<|channel>", "<channel|>")),
    "phi4": ("llama-cpp-microsoft-Phi-4-mini-instruct.jinja", PHI4,
             ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>", "<|/tool|>", "<|tool_call|>",
              "<|/tool_call|>", "<|tool_response|>")),
    "functools": ("microsoft-Phi-4-mini-instruct.jinja", FUNCTOOLS,
                  ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>", "<|/tool|>")),
}


def obj(props: dict, required=None) -> dict:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": False}


ADD = ToolSpec("add", "Add two integers.", obj({"a": {"type": "integer", "minimum": -99, "maximum": 99},
                                               "b": {"type": "integer", "minimum": -99, "maximum": 99}}))
WEATHER = ToolSpec("get_weather", "Current weather in a city.",
                   obj({"city": {"type": "string", "maxLength": 8}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                       required=["city"]))
TAGS = ToolSpec("tag", "Tag a note.", obj({"tags": {"type": "array", "items": {"enum": ["a", "b", "c"]},
                                                    "maxItems": 3}, "loud": {"type": "boolean"}}))
NOARGS = ToolSpec("now", "The time now.", obj({}))
NESTED = ToolSpec("book", "Book a table.", obj({"at": obj({"hour": {"type": "integer", "minimum": 8, "maximum": 22},
                                                             "name": {"type": "string", "maxLength": 5}}),
                                                "size": {"type": ["integer", "null"], "minimum": 1, "maximum": 9}}))
TOOLSETS = [[ADD], [WEATHER], [NESTED], [NOARGS, ADD], [ADD, TAGS, NOARGS], [WEATHER, NESTED, TAGS]]


def test_the_families_are_detected_from_their_real_templates():
    for name, (file, fmt, _markers) in FAMILIES.items():
        assert detect_format((TEMPLATES / file).read_text()) == fmt, name
    assert detect_format((TEMPLATES / "ibm-granite-granite-3.3-2B-Instruct.jinja").read_text()) == GRANITE


def test_granite_gets_its_tools_and_earlier_calls_as_it_writes_them():
    template = ChatTemplate((TEMPLATES / "ibm-granite-granite-3.3-2B-Instruct.jinja").read_text())
    text = render_with_tools(template, _conversation(), [ADD, WEATHER], GRANITE)
    assert "<|start_of_role|>available_tools<|end_of_role|>" in text and "Current weather in a city." in text
    written = '<|tool_call|>[{"name": "add", "arguments": {"a": 2, "b": 40}}]'
    assert written in text and "<|start_of_role|>tool<|end_of_role|>42" in text
    _content, calls = split_tool_calls(written, GRANITE, [ADD])
    assert [(c.name, c.arguments, c.error) for c in calls] == [("add", {"a": 2, "b": 40}, None)]


def _conversation():
    call = ToolCall("abcDEF123", "add", {"a": 2, "b": 40})
    return [PromptMessage.system("Be brief."), PromptMessage.user("Add 2 and 40."), PromptMessage.assistant("", [call]),
            PromptMessage.tool_result(ToolResult("abcDEF123", "add", "42")),
            PromptMessage.assistant("It is 42."), PromptMessage.user("And the weather?")]


# what each real template writes for the earlier call, and how it hands the result back
WRITTEN = {"harmony": ("<|start|>assistant to=functions.add<|channel|>commentary json<|message|>"
                       '{"a": 2, "b": 40}<|call|>',
                       "<|start|>functions.add to=assistant<|channel|>commentary<|message|>\"42\"<|end|>"),
           "gemma4": ("<|turn>model\n<|tool_call>call:add{a:2,b:40}<tool_call|>",
                      '<|tool_response>response:add{value:<|"|>42<|"|>}<tool_response|>It is 42.<turn|>'),
           "phi4": ('<|assistant|><|tool_call|>{"name": "add", "arguments": {"a": 2, "b": 40}}<|/tool_call|><|end|>',
                    '<|tool_response|>"42"<|end|>'),
           "functools": ('<|assistant|>functools[{"name": "add", "arguments": {"a": 2, "b": 40}}]<|end|>',
                         "<|tool|>42<|end|>")}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_real_templates_render_tools_calls_and_results(family):
    file, fmt, _markers = FAMILIES[family]
    text = render_with_tools(ChatTemplate((TEMPLATES / file).read_text(), "<s>", "</s>"), _conversation(),
                             [ADD, WEATHER], fmt)
    assert "get_weather" in text and "Current weather in a city." in text     # the tools are described
    call_text, result_text = WRITTEN[family]
    assert call_text in text, text
    assert result_text in text, text
    # the parser reads back what the template writes (for harmony: what follows the prompt's
    # "<|start|>assistant", the model's part)
    reply = call_text.split("<|start|>assistant", 1)[-1].split("<|assistant|>", 1)[-1].split("<|turn>model\n")[-1]
    _content, calls = split_tool_calls(reply, fmt, [ADD, WEATHER])
    assert [(c.name, c.arguments, c.error) for c in calls] == [("add", {"a": 2, "b": 40}, None)], reply


def test_harmony_renders_parallel_calls_one_message_each():
    calls = [ToolCall("aaaaaaaaa", "add", {"a": 1, "b": 2}), ToolCall("bbbbbbbbb", "get_weather", {"city": "Oslo"})]
    messages = [PromptMessage.user("Both."), PromptMessage.assistant("", calls),
                PromptMessage.tool_result(ToolResult("aaaaaaaaa", "add", "3")),
                PromptMessage.tool_result(ToolResult("bbbbbbbbb", "get_weather", "rain"))]
    text = render_with_tools(ChatTemplate((TEMPLATES / FAMILIES["harmony"][0]).read_text()), messages,
                             [ADD, WEATHER], HARMONY)
    assert text.index("to=functions.add") < text.index("<|start|>functions.add to=assistant") < \
        text.index("to=functions.get_weather") < text.index("<|start|>functions.get_weather to=assistant")


def test_harmony_replies_are_parsed_with_their_analysis_and_header_variants():
    tools = [ADD, WEATHER]
    cases = {
        '<|channel|>analysis<|message|>Need to add.<|end|><|start|>assistant<|channel|>commentary '
        'to=functions.add <|constrain|>json<|message|>{"a":1,"b":2}': ("", None),
        '<|channel|>commentary to=functions.add json<|message|>{"a":1,"b":2}<|call|>': ("", None),
        '<|channel|>final<|message|>Let me check.<|end|><|start|>assistant to=functions.add<|channel|>commentary '
        'json<|message|>{"a":1,"b":2}': ("Let me check.", None),
        '<|channel|>commentary to=functions.add json<|message|>{"a":1,"b":500}': ("", "500 is greater than"),
        '<|channel|>commentary to=functions.sub json<|message|>{}': ("", "no tool named 'sub'"),
        '<|channel|>commentary to=functions.add json': ("", "ended inside the call's header"),
    }
    for text, (content, problem) in cases.items():
        got, calls = split_tool_calls(text, HARMONY, tools)
        assert got == content and len(calls) == 1, text
        if problem is None:
            assert calls[0].error is None and calls[0].arguments == {"a": 1, "b": 2}
        else:
            assert problem in calls[0].error, (text, calls[0].error)
    plain = "<|channel|>analysis<|message|>Hi.<|end|><|start|>assistant<|channel|>final<|message|>Hello!"
    assert split_tool_calls(plain, HARMONY, tools) == (plain, [])


def test_harmony_text_filter_never_shows_a_call_header():
    f = CallTextFilter(HARMONY)
    pieces = ["<|channel|>", "analysis<|message|>Think", "ing.<|end|><|start|>", "assistant<|channel|>commentary",
              " to=functions.add", " json<|message|>{}"]
    shown = "".join(f.feed(p) for p in pieces) + f.flush()
    assert shown == "<|channel|>analysis<|message|>Thinking.<|end|>"
    f = CallTextFilter(HARMONY)
    pieces = ["<|channel|>final", "<|message|>Hel", "lo <", "b>!"]
    assert "".join(f.feed(p) for p in pieces) + f.flush() == "<|channel|>final<|message|>Hello <b>!"


def test_gemma_values_read_as_the_template_writes_them():
    value = {"city": "Paris, \"FR\" {x}", "days": 3, "ok": True, "none": None, "list": [1.5, "a", {"k": False}]}
    text = gemma_literal(value)
    assert text == '{city:<|"|>Paris, "FR" {x}<|"|>,days:3,list:[1.5,<|"|>a<|"|>,{k:false}],none:null,ok:true}'
    assert parse_value(text) == (value, len(text))
    for broken, why in (('{a:<|"|>x}', "not closed"), ("{a 1}", "has no ':'"), ("{a:1;b:2}", "neither"),
                        ("{a:@}", "no value")):
        with pytest.raises(GemmaSyntaxError, match=why):
            parse_value(broken)
    _c, calls = split_tool_calls('<|tool_call>call:add{a:1,b:2}<tool_call|><|tool_call>call:add{a:1}<tool_call|>'
                                 '<|tool_call>call:add{a:1,b:2', GEMMA4, [ADD])
    assert calls[0].error is None and calls[0].arguments == {"a": 1, "b": 2}
    assert "'b' is a required property" in calls[1].error
    assert "no closing <tool_call|>" in calls[2].error


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    """A tiny random model per family, with that family's real template and its markers as
    control tokens."""
    out = {}
    for name, (file, _fmt, markers) in FAMILIES.items():
        path = tmp_path_factory.mktemp("formats") / f"{name}.gguf"
        write_tiny_model(path, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden=64, context=2048,
                         chat_template=(TEMPLATES / file).read_text(), control_tokens=markers)
        out[name] = load_model(path, device="cpu", context_length=2048)
    return out


def test_forced_calls_of_each_new_family_parse_and_validate(family_models):
    """Issue 31's target for these formats: under the constraint every call a random model
    finishes parses and matches its tool's schema (6 tool sets x 4 families)."""
    produced, problems = 0, []
    for family, model in family_models.items():
        fmt = FAMILIES[family][1]
        for i, tools in enumerate(TOOLSETS):
            choice = tools[-1].name if i % 3 == 2 else "required"
            n, found = forced_call_problems(model, fmt, tools, "Help.", choice, parallel=i == 0,
                                            seed=7 + i, max_tokens=160)
            produced += n
            problems += [(family, i, *p) for p in found]
    assert not problems, problems
    assert produced >= 24


@pytest.mark.parametrize("family, marker", [("harmony", "<|channel|>commentary to=functions."),
                                            ("gemma4", "<|tool_call>"), ("phi4", "<|tool_call|>"),
                                            ("functools", "functools[")])
def test_auto_is_free_until_the_family_marker(family_models, family, marker):
    import torch
    model = family_models[family]
    c = tool_constraint(model, [ADD], "auto", FAMILIES[family][1])
    for tid in model.tokenize("Sure, I will add.", add_bos=False):
        c.advance(tid)
    logits = torch.randn(model.args.vocab_size)
    assert not c.active and torch.equal(c.mask(logits), logits)
    for tid in model.tokenize(marker, add_bos=False):
        c.advance(tid)
    assert c.active and c.failed is None
    allowed = c._inner.allowed()
    assert not allowed[model.tokenize("x", add_bos=False)[0]]     # only the call may follow


@pytest.mark.parametrize("fmt, reply", [
    (PHI4, 'Sure.<|tool_call|>{"name":"add","arguments":{"a":1,"b":{"c":"}"}}}<|/tool_call|>'
           '<|tool_call|>{"name":"now","arguments":{}}<|/tool_call|>'),
    (FUNCTOOLS, 'functools[{"name":"add","arguments":{"a":1,"b":{"c":"}"}}}, {"name":"now","arguments":{}}]'),
    (HARMONY, '<|channel|>analysis<|message|>"name": x<|end|><|start|>assistant<|channel|>commentary '
              'to=functions.add <|constrain|>json<|message|>{"a":1,"b":{"c":"}"}}'),
    (GEMMA4, '<|tool_call>call:add{a:1,b:{c:<|"|>}<|"|>}}<tool_call|><|tool_call>call:now{}<tool_call|>'),
])
def test_calls_stream_as_names_then_argument_pieces(fmt, reply):
    """What the server streams: each call's name first, then its arguments in pieces that,
    joined, are the JSON of the arguments the parser reads at the end."""
    from chatgui.engine.tool_stream import ArgsPiece, CallStart, CallStreamer
    streamer, events = CallStreamer(fmt), []
    for k in range(0, len(reply), 3):
        events += streamer.feed(reply[k:k + 3].encode())
    starts = [e for e in events if isinstance(e, CallStart)]
    _content, calls = split_tool_calls(reply, fmt, [ADD, NOARGS, TAGS])
    assert [s.name for s in starts] == [c.name for c in calls] and [s.index for s in starts] == list(range(len(calls)))
    for s, call in zip(starts, calls):
        pieces = [e.text for e in events if isinstance(e, ArgsPiece) and e.index == s.index]
        assert json.loads("".join(pieces)) == call.arguments
        assert events.index(s) < events.index(next(e for e in events if isinstance(e, ArgsPiece) and e.index == s.index))
    if fmt is not GEMMA4:
        assert sum(isinstance(e, ArgsPiece) for e in events) > len(calls)      # in pieces as written


def test_python_functools_in_a_reply_is_no_call():
    f = CallTextFilter(FUNCTOOLS)
    shown = "".join(f.feed(p) for p in ["Use functools", ".partial here; ", "functools", "[{\"name\""]) + f.flush()
    assert shown == "Use functools.partial here; "
    assert split_tool_calls("Use functools.partial.", FUNCTOOLS, [ADD]) == ("Use functools.partial.", [])

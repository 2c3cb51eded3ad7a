"""Tool calls in the engine: real templates of three families rendered with tools, calls parsed
and validated, and, with tiny random models, calls held to their schemas while generated."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.common.types import SamplingSettings
from chatgui.engine.chat_model import load_model
from chatgui.engine.chat_template import ChatTemplate
from chatgui.engine.tool_calls import (HERMES, LLAMA3, MISTRAL, PLAIN, CallTextFilter, detect_format, render_with_tools,
                                      split_tool_calls, tool_constraint, tool_prompt_ids)
from chatgui.engine.tool_loop import run_tool_loop
from forced_calls import forced_call_problems
from tiny_gguf import write_tiny_model

TEMPLATES = Path(__file__).parent / "data" / "templates"
FAMILIES = {"hermes": ("qwen2.5-instruct.jinja", HERMES), "llama3": ("llama-3.1-instruct.jinja", LLAMA3),
            "mistral": ("mistral-nemo-instruct-2407.jinja", MISTRAL)}


def obj(props: dict, required=None) -> dict:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": False}


WEATHER = ToolSpec("get_weather", "Current weather in a city.",
                   obj({"city": {"type": "string", "maxLength": 8}, "unit": {"enum": ["celsius", "fahrenheit"]}}))
ADD = ToolSpec("add", "Add two integers.", obj({"a": {"type": "integer", "minimum": -99, "maximum": 99},
                                               "b": {"type": "integer", "minimum": -99, "maximum": 99}}))
TIMER = ToolSpec("set_timer", "Start a timer.", obj({"minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                                                    "loud": {"type": "boolean"}}))
TAGS = ToolSpec("tag", "Tag a note.", obj({"tags": {"type": "array", "items": {"enum": ["a", "b", "c"]},
                                                    "maxItems": 3}}))
NOARGS = ToolSpec("now", "The time now.", obj({}))
OPTIONAL = ToolSpec("search", "Search notes.", obj({"q": {"type": "string", "maxLength": 6},
                                                   "limit": {"type": "integer", "minimum": 1, "maximum": 9}},
                                                  required=["q"]))
TOOLSETS = [[WEATHER], [ADD], [TIMER], [TAGS], [NOARGS], [OPTIONAL], [WEATHER, ADD], [ADD, TIMER, TAGS],
            [WEATHER, NOARGS, OPTIONAL], [WEATHER, ADD, TIMER, TAGS, NOARGS, OPTIONAL]]
PROMPTS = ["What is the weather in Paris?", "Add 2 and 40.", "Set a timer for five minutes.", "Tag this note a.",
           "What time is it?", "Find my notes on tea.", "Weather in Oslo, then 3+4.", "Start a loud timer.",
           "Search for milk.", "Do whatever helps."]


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    """A tiny random model per family, carrying that family's real template (small and with a
    context long enough for the tools' descriptions, which these byte-level vocabularies spell out)."""
    out = {}
    for name, (file, _fmt) in FAMILIES.items():
        path = tmp_path_factory.mktemp("tools") / f"{name}.gguf"
        write_tiny_model(path, dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden=64, context=8192,
                         chat_template=(TEMPLATES / file).read_text())
        out[name] = load_model(path, device="cpu", context_length=8192)
    return out


def test_families_are_detected_from_real_templates():
    for name, (file, fmt) in FAMILIES.items():
        assert detect_format((TEMPLATES / file).read_text()) == fmt, name
    assert detect_format(None) == PLAIN
    assert detect_format("{{ messages }}") == PLAIN


@pytest.mark.parametrize("family", list(FAMILIES))
def test_real_templates_render_tools_calls_and_results(family):
    file, fmt = FAMILIES[family]
    template = ChatTemplate((TEMPLATES / file).read_text(), "<s>", "</s>")
    call = ToolCall("abcDEF123", "add", {"a": 2, "b": 40})
    messages = [PromptMessage.system("Be brief."), PromptMessage.user("Add 2 and 40."),
                PromptMessage.assistant("", [call]), PromptMessage.tool_result(ToolResult("abcDEF123", "add", "42"))]
    text = render_with_tools(template, messages, [ADD, WEATHER], fmt)
    assert '"get_weather"' in text and "Current weather in a city." in text    # the tools are described
    assert "42" in text
    written = {"hermes": '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 40}}\n</tool_call>',
               "llama3": '{"name": "add", "parameters": {"a": 2, "b": 40}}',
               "mistral": '[TOOL_CALLS][{"name": "add", "arguments": {"a": 2, "b": 40}, "id": "abcDEF123"}]'}[family]
    assert written in text
    # and the parser reads back what the template writes
    _content, calls = split_tool_calls(written, fmt, [ADD, WEATHER])
    assert [(c.name, c.arguments, c.error) for c in calls] == [("add", {"a": 2, "b": 40}, None)]


def test_a_template_without_tools_gets_them_in_the_system_prompt():
    template = ChatTemplate(None)
    messages = [PromptMessage.user("hi"), PromptMessage.assistant("", [ToolCall("x" * 9, "now", {})]),
                PromptMessage.tool_result(ToolResult("x" * 9, "now", "noon"))]
    text = render_with_tools(template, messages, [NOARGS], PLAIN)
    assert text.startswith("<|im_start|>system\n# Tools") and '"name": "now"' in text
    assert '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>' in text
    assert "<tool_response>\nnoon\n</tool_response>" in text


def test_parsing_reports_what_is_wrong_with_a_call():
    tools = [ADD]
    cases = {
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>': None,
        '<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}\n</tool_call>': None,
        '<tool_call>\n{"name": "sub", "arguments": {}}\n</tool_call>': "there is no tool named 'sub'",
        '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>': "'b' is a required property",
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 500}}\n</tool_call>': "500 is greater than",
        '<tool_call>\n{"name": "add", "arguments": {"a": 1,\n</tool_call>': "not valid JSON",
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}': "no closing </tool_call>",
    }
    for text, problem in cases.items():
        content, calls = split_tool_calls("Sure. " + text, HERMES, tools)
        assert content == "Sure."
        assert len(calls) == 1
        if problem is None:
            assert calls[0].error is None and calls[0].arguments == {"a": 1, "b": 2}
        else:
            assert problem in calls[0].error, (text, calls[0].error)
    assert split_tool_calls("Just text.", HERMES, tools) == ("Just text.", [])
    assert split_tool_calls("Text {not a call}", LLAMA3, tools) == ("Text {not a call}", [])
    _c, calls = split_tool_calls('[TOOL_CALLS] [{"name": "add", "arguments": {"a": 1, "b": 2}}, '
                                 '{"name": "add", "arguments": {"a": 3, "b": 4}}]', MISTRAL, tools)
    assert [c.arguments for c in calls] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_streamed_text_holds_back_the_calls():
    f = CallTextFilter(HERMES)
    shown = "".join(f.feed(p) for p in ["Let me ", "check.<tool", "_call>\n{\"name\"", ": 1}</tool_call>"]) + f.flush()
    assert shown == "Let me check."
    f = CallTextFilter(HERMES)
    assert "".join(f.feed(p) for p in ["a <", "b"]) + f.flush() == "a <b"     # a "<" that began nothing
    f = CallTextFilter(LLAMA3)
    assert "".join(f.feed(p) for p in [" ", "{\"name\"", ": 1}"]) + f.flush() == ""
    f = CallTextFilter(LLAMA3)
    assert "".join(f.feed(p) for p in [" ", "Hello {x}"]) + f.flush() == " Hello {x}"


def test_thirty_forced_calls_across_three_families_all_parse_and_validate(family_models):
    """The target of issue 31: with tool_choice required (or a named tool), every call a tiny
    random model produces under the constraint parses and matches its schema."""
    produced, problems = 0, []
    for family, model in family_models.items():
        fmt = FAMILIES[family][1]
        for i, (tools, prompt) in enumerate(zip(TOOLSETS, PROMPTS)):
            choice = tools[-1].name if i % 3 == 2 else "required"
            n, found = forced_call_problems(model, fmt, tools, prompt, choice, parallel=i % 2 == 0,
                                            seed=100 + i, max_tokens=400)
            produced += n
            problems += [(family, i, *p) for p in found]
    assert not problems, problems
    assert produced >= 30


def test_auto_stays_free_text_until_the_marker(family_models):
    model = family_models["hermes"]
    c = tool_constraint(model, [ADD], "auto", HERMES)
    assert not c.active
    for tid in model.tokenize("Sure, I will add.", add_bos=False):
        c.advance(tid)
    assert not c.active
    import torch
    logits = torch.randn(model.args.vocab_size)
    assert torch.equal(c.mask(logits), logits)           # no cost while the reply is text
    for tid in model.tokenize(" <tool_call>", add_bos=False):
        c.advance(tid)
    assert c.active
    allowed = c._inner.allowed()
    assert allowed[model.tokenize("\n", add_bos=False)[0]]       # the call's body comes next
    assert not allowed[model.tokenize("x", add_bos=False)[0]]


def test_a_named_tool_that_is_not_offered_is_refused(family_models):
    from chatgui.engine.constrained import ConstraintError
    with pytest.raises(ConstraintError, match="not among the tools"):
        tool_constraint(family_models["hermes"], [ADD], "subtract", HERMES)


def test_the_loop_calls_gets_results_and_asks_consent(family_models):
    """The loop with a forced first round: the call runs only with consent; its result goes
    back as a tool message; the model continues; a denial is the result instead."""
    model = family_models["hermes"]
    ran, asked = [], []

    def run(call):
        ran.append(call)
        return ToolResult(call.id, call.name, str(call.arguments["a"] + call.arguments["b"]))

    for allow in (True, False):
        ran.clear()
        events = []
        turn = run_tool_loop(model, [PromptMessage.user("Add 2 and 40.")], [ADD],
                             SamplingSettings(seed=3, max_new_tokens=120), run=run, parallel=False,
                             consent=lambda call: asked.append(call) or allow, tool_choice="add", max_rounds=1,
                             on_event=lambda k, v: events.append(k))
        assert turn.calls and all(c.error is None for c in turn.calls)
        assert len(ran) == (len(turn.calls) if allow else 0)
        roles = [m.role for m in turn.messages]
        assert roles[0] == "assistant" and turn.messages[0].tool_calls
        assert roles.count("tool") == len(turn.calls)
        tool_texts = [m.content for m in turn.messages if m.role == "tool"]
        if allow:
            assert tool_texts[0] == str(turn.calls[0].arguments["a"] + turn.calls[0].arguments["b"])
        else:
            assert all(t == "The user did not allow this call." for t in tool_texts)
        assert roles[-1] == "assistant" and "call" in events and "result" in events


def test_the_loop_stops_when_cancelled(family_models):
    model = family_models["hermes"]
    cancel = threading.Event()

    def run(call):
        cancel.set()      # Stop pressed while the tool ran
        return ToolResult(call.id, call.name, "ok")
    turn = run_tool_loop(model, [PromptMessage.user("Add.")], [ADD], SamplingSettings(seed=1, max_new_tokens=120),
                         run=run, consent=lambda call: True, tool_choice="required", cancel=cancel, parallel=False)
    assert turn.finish_reason == "cancelled" and turn.rounds == 1


def test_a_tool_reply_reports_its_prompt_as_rendered_with_the_tools(family_models):
    """The window's tool reply job says its prompt's size as the first round rendered it (with the
    tools' descriptions), not as the chat alone counts, and its turn holds every round's tokens."""
    from chatgui.common.runner import ModelRunner
    from chatgui.ui.tools.tool_replies import tool_reply_job

    model = family_models["hermes"]
    messages = [PromptMessage.user("Add 2 and 40.")]
    settings = SamplingSettings(seed=5, max_new_tokens=60)

    class Box:
        specs = [ADD]

        def close(self):
            pass

    runner = ModelRunner("test-tool-reply")
    runner.backend = model
    events = []
    job = runner.submit(tool_reply_job(runner, messages, settings, lambda: (Box(), []), None, max_rounds=1,
                                       stored=[ToolResult("x", "add", "42")], tool_choice="add"),
                        lambda job, kind, value: events.append((kind, value)))
    assert job.done.wait(120)
    runner.close()
    kinds = [k for k, _ in events]
    assert kinds.count("started") == 1 and kinds[-1] == "done", kinds
    started = dict(events)["started"]
    with_tools = len(tool_prompt_ids(model, messages, [ADD], HERMES, settings.max_new_tokens)[0])
    assert started.stats.prompt_tokens == with_tools > model.count_tokens(messages)
    turn = events[-1][1]
    assert turn.rounds == 2 and [r.prompt_tokens for r in turn.round_stats][0] == with_tools
    assert turn.stats.prompt_tokens == with_tools and turn.stats.seed == 5
    assert turn.stats.generated_tokens == sum(r.generated_tokens for r in turn.round_stats) > 0
    assert turn.stats.finish_reason == turn.finish_reason

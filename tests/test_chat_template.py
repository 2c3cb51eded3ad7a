"""Chat templates are untrusted: sandboxed, time- and size-limited; ChatML when absent."""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from chatgui.engine import ModelLoadError, TemplateError, load_model
from chatgui.engine.chat_template import ChatTemplate
from chatgui.common.prompt import PromptMessage
from tiny_gguf import write_tiny_model

MSG = [PromptMessage.user("Hi")]


def test_chatml_fallback_when_file_has_no_template(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", chat_template=None), device="cpu")
    assert m.template.is_fallback
    assert m.render_chat(MSG) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert m.render_chat(MSG, add_generation_prompt=False) == "<|im_start|>user\nHi<|im_end|>\n"


def test_template_helpers_work():
    t = ChatTemplate("{{ bos_token }}{% for m in messages %}{{ m.content | tojson }}{% endfor %}"
                     "{% if not messages %}{{ raise_exception('no messages') }}{% endif %}", bos_token="<s>")
    assert t.render([PromptMessage.user('a"é')]) == '<s>"a\\"é"'
    with pytest.raises(TemplateError, match="no messages"):
        t.render([])


@pytest.mark.parametrize("source,what", [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox"),
    ("{{ cycler.__init__.__globals__.os.system('echo pwned') }}", "sandbox"),
    ("{{ self.__init__.__globals__.__builtins__.__import__('os').listdir('/') }}", "sandbox"),
    ("{% import 'os' as os %}{{ os }}", "failed"),
    ("{% include '/etc/passwd' %}", "failed"),
    ("{{ 'x' * 100000000 }}", "enormous"),
    ("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}", "too much text"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed"),
    ("{{ 2 ** 100000000 }}", "enormous"),
])
def test_hostile_templates_are_refused(source, what):
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match=what):
        ChatTemplate(source).render(MSG)
    assert time.perf_counter() - t0 < 3


def test_endless_loop_times_out():
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="too long"):
        ChatTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").render(MSG)
    assert time.perf_counter() - t0 < 4


def test_template_that_does_not_compile_is_a_load_error(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", chat_template="{% for %}")
    with pytest.raises(ModelLoadError, match="does not compile"):
        load_model(p, device="cpu")


def test_no_code_ran(tmp_path):
    marker = tmp_path / "pwned"
    src = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    with pytest.raises(TemplateError):
        ChatTemplate(src).render(MSG)
    assert not marker.exists()


# Each of these asked one C call for gigabytes before the sandbox bounded every value a template
# builds (issue 29, case 3); now each is refused before it allocates. BIG is a text of 1M.
BIG = "{% set big = 'x' * 1000000 %}"


@pytest.mark.parametrize("source", [
    "{{ '%0999999999d' % 0 }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%0999999999d'|format(0) }}",
    "{{ ''|center(999999999) }}",
    "{{ ''.center(999999999) }}",
    "{{ ''.zfill(999999999) }}",
    "{{ '\t'.expandtabs(999999999) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{}}'.format(1, 999999999) }}",
    "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 1000000) }}",
    "{{ ('a\n' * 1000)|indent(9999999) }}",
    BIG + "{{ range(100000)|join(big) }}",
    BIG + "{{ big.join(range(100000)|map('string')) }}",
    BIG + "{{ big|replace('x', 'yy' * 10000) }}",
    BIG + "{{ big.replace('x', 'yy' * 10000) }}",
    BIG + "{{ big.translate({120: 'yy' * 10000}) }}",
    "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    BIG + "{{ [big] * 100000 }}",
    BIG + "{{ ([big] * 100000)|string }}",
    BIG + "{{ ([big] * 100000)|tojson }}",
    BIG + "{{ ([big] * 100000)|pprint }}",
    BIG + "{{ '%s' % ([big] * 100000,) }}",
    BIG + "{{ 'a' ~ [big] * 100000 }}",
    "{{ {'a': [1, [2]]}|tojson(indent=999999999) }}",
    "{{ 'x'.encode() * 999999999 }}",
    "{{ [1]|batch(999999999, 'x')|list }}",
    "{{ ([[1] * 100000] * 10000)|sum(start=[]) }}",
    "{{ ((7 ** 999) ** 999) ** 999 }}",
    "{{ ('a b ' * 100000)|wordwrap(1, wrapstring='x' * 100000) }}",
    BIG + "{% macro m() %}{% for i in range(10000) %}{{ big }}{% endfor %}{% endmacro %}{{ m()|length }}",
    BIG + "{% set t %}{% for i in range(10000) %}{{ big }}{% endfor %}{% endset %}{{ t|length }}",
    BIG + "{% set ns = namespace(l=[big] * 100000) %}{{ ns }}",
    BIG + "{{ '%(a)s' * 100 % {'a': big} }}",
    BIG + "{{ '{0!r}'.format([big] * 100000) }}",
    "{{ ('http://a ' * 100000)|urlize(target='x' * 1000000) }}",
    # Many values each under the limit: the render's total is bounded too.
    "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 7000000 ~ i] %}"
    "{% endfor %}",
])
def test_template_memory_bombs_are_refused_before_they_allocate(source):
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="enormous|in all"):
        ChatTemplate(source).render(MSG)
    assert time.perf_counter() - t0 < 3


def test_lorem_ipsum_is_not_offered():
    with pytest.raises(TemplateError):
        ChatTemplate("{{ lipsum(999999999) }}").render(MSG)


QWEN25 = (  # Qwen2.5-Instruct's template as its GGUF files carry it (tools, tojson, `~`, loops)
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}"
    "{{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.' }}{%- endif %}{{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the "
    "user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}"
    "{%- for tool in tools %}{{- \"\\n\" }}{{- tool | tojson }}{%- endfor %}{{- \"\\n</tools>\" }}"
    "{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
    "helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>' + message.role }}{%- if message.content %}"
    "{{- '\\n' + message.content }}{%- endif %}{{- '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def test_real_templates_and_long_chats_still_render():
    """The limits leave room for real work: a 3M-character message, 2,000 turns, string methods,
    format, join, tojson with an indent, `~` and a block set."""
    long_text = "word " * 600_000
    chat = [PromptMessage.user(long_text)] + [
        PromptMessage(("assistant", "user")[i % 2], f"turn {i}") for i in range(2000)]
    out = ChatTemplate(QWEN25).render(chat)
    assert out.count("<|im_start|>") == 2003 and long_text in out
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert '{"type": "function"' in ChatTemplate(QWEN25).render(MSG, tools=tools)
    t = ChatTemplate("{% set s %}{{ messages[0].content|upper }}{% endset %}{{ '%-4s|' % s }}"
                     "{{ '{:>5}'.format(s) }}{{ [s, 'b']|join(',') }}{{ {'k': [1]}|tojson(indent=2) }}"
                     "{{ s ~ '!' }}{{ s.center(6, '*') }}{{ s|replace('H', 'J') }}{{ (s * 2)|indent(2) }}")
    assert t.render(MSG) == 'HI  |   HIHI,b{\n  "k": [\n    1\n  ]\n}HI!**HI**JIHIHI'


def test_a_bomb_in_a_model_file_is_a_clear_error_not_a_crash(tmp_path):
    """The window counts the reopened chat's tokens at start-up: that render must fail cleanly."""
    m = load_model(write_tiny_model(tmp_path / "m.gguf", chat_template="{{ '%0999999999d' % 0 }}"), device="cpu")
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match="enormous"):
        m.count_tokens(MSG)
    with pytest.raises(TemplateError, match="enormous"):
        m.render_chat(MSG)
    assert time.perf_counter() - t0 < 3


# -- real templates, rendered as llama.cpp renders them ------------------------------------------
_DATA = Path(__file__).parent / "data"
_REFERENCE = json.loads((_DATA / "template_reference.llamacpp.json").read_text(encoding="utf-8"))


def _case_id(case) -> str:
    variables = "".join(f"-{k}" for k in case.get("variables", {}))
    return (f"{case['template'].removesuffix('.jinja')}-{case['conversation']}-agp{int(case['add_generation_prompt'])}"
            f"{variables}")


@pytest.mark.parametrize("case", _REFERENCE["cases"], ids=_case_id)
def test_real_template_renders_as_llama_cpp(case):
    """tests/data/make_template_reference.py rendered a fixed conversation with each family's
    template through llama-cpp-python; our sandbox must give the same text (same fixed clock)."""
    source = (_DATA / "templates" / case["template"]).read_text(encoding="utf-8")
    now = datetime.fromisoformat(_REFERENCE["fixed_now"])
    template = ChatTemplate(source, bos_token=case["bos_token"], eos_token=case["eos_token"])
    messages = _REFERENCE["conversations"][case["conversation"]]
    # (the conversations as the reference gave them to the template: its dicts, tool_responses included)
    render = lambda: template.render_dicts(messages, add_generation_prompt=case["add_generation_prompt"],
                                           strftime_now=now.strftime, **case.get("variables", {}))
    if "refused" in case:
        with pytest.raises(TemplateError, match=case["refused"]):
            render()
    else:
        assert render() == case["text"]


def test_every_family_has_a_reference():
    names = {c["template"] for c in _REFERENCE["cases"]}
    for family in ("Qwen3", "Llama-3.2", "gemma", "Phi-4-mini", "Mistral", "granite", "gpt-oss", "gemma-4"):
        assert any(family in n for n in names), family


# -- gpt-oss's harmony format -------------------------------------------------------------------------
HARMONY_REPLY = ("<|channel|>analysis<|message|>The user asks 2+2. That is 4.<|end|>"
                 "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.")


def test_harmony_reply_analysis_is_thinking_and_final_is_the_answer():
    from chatgui.common.harmony import split_harmony
    from chatgui.ui.chat.thinking import split_thinking
    done = split_thinking(HARMONY_REPLY)
    assert (done.thinking, done.answer, done.done) == ("The user asks 2+2. That is 4.", "2 + 2 = 4.", True)
    # while it streams: the analysis is open, then the answer grows; a marker half written is not shown
    assert split_thinking("<|channel|>analysis<|message|>The user asks<|en") == \
        type(done)("The user asks", "", False)
    assert split_harmony("<|channel|>analy").thinking is None
    streaming = split_thinking(HARMONY_REPLY[:HARMONY_REPLY.index("final") + 3])
    assert streaming.thinking == "The user asks 2+2. That is 4." and streaming.answer == "" and streaming.done
    # a stop token that reached the text ends the answer; no analysis at all is an answer only
    assert split_thinking(HARMONY_REPLY + "<|return|>").answer == "2 + 2 = 4."
    plain = split_thinking("<|start|>assistant<|channel|>final<|message|>Hi!")
    assert plain.thinking is None and plain.answer == "Hi!"
    # other replies are untouched
    assert split_thinking("<think>hm</think>Yes").answer == "Yes"


def test_gpt_oss_template_gets_only_the_final_answer_of_an_earlier_reply():
    source = (_DATA / "templates" / "openai-gpt-oss-120b.jinja").read_text(encoding="utf-8")
    template = ChatTemplate(source, bos_token="<|startoftext|>", eos_token="<|return|>")
    now = datetime.fromisoformat(_REFERENCE["fixed_now"]).strftime
    turn = lambda reply: [PromptMessage.user("What is 2+2?"), PromptMessage.assistant(reply),
                          PromptMessage.user("Thanks")]
    saved, clean = template.render(turn(HARMONY_REPLY), strftime_now=now), template.render(turn("2 + 2 = 4."),
                                                                                           strftime_now=now)
    assert saved == clean
    assert "<|channel|>final<|message|>2 + 2 = 4.<|end|>" in saved and "The user asks" not in saved


def _harmony_vocabulary():
    from tiny_gguf import vocabulary
    tokens, types, merges = vocabulary()
    harmony = ["<|return|>", "<|constrain|>", "<|channel|>", "<|start|>", "<|end|>", "<|message|>", "<|call|>"]
    return tokens + harmony, types + [3] * len(harmony), merges


def test_harmony_markers_are_reply_text_and_return_or_call_end_the_reply():
    """As llama.cpp's vocabulary loader does for o200k_harmony: <|channel|>, <|message|>, <|start|>,
    <|constrain|> and <|end|> are rendered; <|end|> ends a message, not the reply; <|return|> and
    <|call|> end it."""
    from chatgui.engine.tokenizer import build_tokenizer
    tokens, types, merges = _harmony_vocabulary()
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "default", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges,
            "tokenizer.ggml.eos_token_id": tokens.index("<|return|>")}
    info = build_tokenizer(meta, "harmony.gguf")
    ids = {t: tokens.index(t) for t in tokens if t.startswith("<|")}
    assert {ids["<|return|>"], ids["<|call|>"], ids["<|endoftext|>"]} <= info.stop_ids
    assert ids["<|end|>"] not in info.stop_ids and ids["<|im_end|>"] in info.stop_ids
    text = info.tokenizer.decode([ids["<|channel|>"], ids["<|message|>"], ids["<|end|>"], ids["<|start|>"]],
                                 skip_special_tokens=True)
    assert text == "<|channel|><|message|><|end|><|start|>"
    # a vocabulary without harmony keeps <|end|> as an end of turn (Phi-3) and hides control tokens
    plain_tokens = tokens[:-7] + ["<|end|>"]
    plain = build_tokenizer(dict(meta, **{"tokenizer.ggml.tokens": plain_tokens,
                                          "tokenizer.ggml.token_type": types[:-7] + [3],
                                          "tokenizer.ggml.eos_token_id": 0}), "plain.gguf")
    assert len(plain_tokens) - 1 in plain.stop_ids

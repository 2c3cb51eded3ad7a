"""Reference renderings of real chat templates, made by llama-cpp-python (a reference tool only).

Run with an environment that has llama-cpp-python (not a dependency of chatgui):
    python tests/data/make_template_reference.py
It renders one fixed, tools-free conversation with each template under tests/data/templates/ the
way llama-cpp-python's server does for a GGUF's own template (Jinja2ChatFormatter: jinja2's
immutable sandbox, trim_blocks, lstrip_blocks, its tojson and strftime_now) and writes
template_reference.llamacpp.json, which tests/test_chat_template.py compares with our sandbox.
The clock is fixed (FIXED_NOW) so that templates which print today's date render the same on
any day; the test gives our renderer the same clock.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from llama_cpp import __version__ as llama_cpp_version
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

HERE = Path(__file__).parent
FIXED_NOW = datetime(2026, 3, 14, 15, 9, 26)

# template file -> the BOS and EOS texts of that family's tokenizer
FAMILIES = {
    "Qwen-Qwen3-0.6B.jinja": ("", "<|im_end|>"),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "google-gemma-2-2b-it.jinja": ("<bos>", "<eos>"),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("<s>", "<|endoftext|>"),
    "llama-cpp-microsoft-Phi-4-mini-instruct.jinja": ("<|endoftext|>", "<|endoftext|>"),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("<s>", "</s>"),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("", "<|im_end|>"),
    "ibm-granite-granite-3.3-2B-Instruct.jinja": ("", "<|end_of_text|>"),
    "openai-gpt-oss-120b.jinja": ("<|startoftext|>", "<|return|>"),
    "google-gemma-4-31B-it-interleaved.jinja": ("<bos>", "<eos>"),
}
# Families rendered also with template variables of their own (each set a case of its own) and
# with conversations only they are given: Gemma 4's thinking switch, and an earlier reply that
# kept its thought channel (the template strips it)
# A tool with nested, enum, array and optional parameters (Gemma 4 writes declarations in its own syntax)
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather at a place.",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "nullable": True},
        "days": {"type": "array", "items": {"type": "integer"}, "description": "Days ahead"},
        "where": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                  "required": ["lat"]}}}}}]
EXTRA_VARIABLES = {"google-gemma-4-31B-it-interleaved.jinja": [{"enable_thinking": True}, {"tools": TOOLS}]}
EXTRA_CONVERSATIONS = {"google-gemma-4-31B-it-interleaved.jinja": ["thought_in_reply", "tool_round"]}

CONVERSATIONS = {
    "with_system": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And \"3+3\", in words?"},
    ],
    "no_system": [
        {"role": "user", "content": "Hello there, é ü 漢字"},
    ],
    "thought_in_reply": [
        {"role": "system", "content": "  Answer briefly.\n"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<|channel>thought\nSimple sum.<channel|>2 + 2 = 4."},
        {"role": "user", "content": " Thanks! "},
    ],
    # Gemma 4's shape of a tool round: the model's turn holds its calls and their responses
    "tool_round": [
        {"role": "user", "content": "Weather in Paris for 2 days?"},
        {"role": "assistant", "content": "",
         "tool_calls": [{"type": "function", "function": {
             "name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2], "metric": True}}}],
         "tool_responses": [{"name": "get_weather", "response": {"forecast": ["sun", "rain"], "high": 21.5}}]},
    ],
}


def render(template: str, bos: str, eos: str, messages: list[dict], add_generation_prompt: bool,
           variables: dict | None = None) -> str:
    Jinja2ChatFormatter.strftime_now = staticmethod(lambda fmt: FIXED_NOW.strftime(fmt))
    formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos,
                                    add_generation_prompt=add_generation_prompt)
    # The formatter's own call passes tools=None, functions=None, ...: a template that asks
    # `tools is defined` (Phi-4-mini's) then loops over None. llama.cpp's server leaves tools
    # undefined when a request has none, so render with the formatter's environment and
    # exactly the variables of a tools-free request.
    return formatter._environment.render(
        messages=[dict(m) for m in messages], bos_token=bos, eos_token=eos,
        add_generation_prompt=add_generation_prompt, raise_exception=_raise,
        strftime_now=Jinja2ChatFormatter.strftime_now, **(variables or {}))


def _raise(message: str):
    raise ValueError(message)


def main() -> None:
    cases = []
    for name, (bos, eos) in FAMILIES.items():
        path = HERE / "templates" / name
        if not path.is_file():
            print(f"missing {name}: skipped")
            continue
        template = path.read_text(encoding="utf-8")
        conversations = [c for c in CONVERSATIONS if c not in EXTRA_CONVERSATIONS.get(name, ())]
        conversations += EXTRA_CONVERSATIONS.get(name, [])
        for variables in [{}] + EXTRA_VARIABLES.get(name, []):
            for conv in conversations:
                if conv in ("with_system", "no_system") or conv in EXTRA_CONVERSATIONS.get(name, ()):
                    for agp in (True, False):
                        case = {"template": name, "bos_token": bos, "eos_token": eos, "conversation": conv,
                                "add_generation_prompt": agp}
                        if variables:
                            case["variables"] = variables
                        try:
                            case["text"] = render(template, bos, eos, CONVERSATIONS[conv], agp, variables)
                        except ValueError as e:      # the template's raise_exception (e.g. Gemma: no system role)
                            case["refused"] = str(e)
                        cases.append(case)
    out = {"made_by": f"llama-cpp-python {llama_cpp_version} Jinja2ChatFormatter",
           "fixed_now": FIXED_NOW.isoformat(), "conversations": CONVERSATIONS, "cases": cases}
    (HERE / "template_reference.llamacpp.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n",
                                                            encoding="utf-8")
    print(f"{len(cases)} renderings written")


if __name__ == "__main__":
    main()

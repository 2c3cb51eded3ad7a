"""Tool calls: what holding a call's arguments to their schema costs, against plain decoding.

    python benchmarks/bench_tools.py [--model PATH] [--runs 3] [--tokens 64] [--threads N]

Times, in the same process on the same model:
- the decode step: an unconstrained generation's time per token (best of --runs);
- a forced call (tool_choice "required", engine/tool_calls.py ToolCallConstraint): the time spent
  in the constraint (mask + advance) per token, and the whole generation's time per token;
- "auto" on a reply that writes text: the constraint's bookkeeping per token before any marker
  (it masks nothing then);
- compiling the tools' grammar.
Prints one JSON object; the target (issue 31) is constrained arguments <= 10% of decode time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_structured import Timed as StructuredTimed  # noqa: E402
from chatgui.common.prompt import PromptMessage  # noqa: E402

TOOLS = [
    ("get_weather", "Current weather in a city.",
     {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
      "required": ["city", "unit"], "additionalProperties": False}),
    ("search_notes", "Search the user's notes.",
     {"type": "object", "properties": {"query": {"type": "string", "maxLength": 60},
                                       "limit": {"type": "integer", "minimum": 1, "maximum": 20},
                                       "tags": {"type": "array", "items": {"type": "string", "maxLength": 20},
                                                "maxItems": 3}},
      "required": ["query"], "additionalProperties": False}),
    ("calculator", "Evaluate an arithmetic expression.",
     {"type": "object", "properties": {"expression": {"type": "string", "maxLength": 80}},
      "required": ["expression"], "additionalProperties": False}),
]
CHAT = [PromptMessage.user("What's the weather in Paris, in celsius?")]


class Timed(StructuredTimed):
    """bench_structured's wrapper (time spent in mask and advance, tokens seen), for constraints that
    are copied per candidate too."""

    def fresh(self):
        return Timed(self.inner.fresh())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        __import__("torch").set_num_threads(args.threads)

    from chatgui.common.tools import ToolSpec
    from chatgui.engine import SamplingSettings, load_model
    from chatgui.engine.tool_calls import detect_format, split_tool_calls, tool_constraint, tool_prompt_ids

    from chatgui.models.default_model import default_model_path
    path = args.model or str(default_model_path(fetch=False))
    model = load_model(path, device="cpu", context_length=2048)
    tools = [ToolSpec(n, d, p) for n, d, p in TOOLS]
    fmt = detect_format(model.template.source)
    ids, _ = tool_prompt_ids(model, CHAT, tools, fmt, args.tokens * 2)
    plain = SamplingSettings(temperature=0.8, seed=1, max_new_tokens=args.tokens)

    list(model.generate([], plain, prompt_ids=ids, ignore_eos=True))          # warm-up (and the prompt's cache)
    step_s = []
    for seed in range(args.runs):
        gen = model.generate([], plain.with_(seed=seed), prompt_ids=ids, ignore_eos=True)
        list(gen)
        step_s.append(1 / gen.stats.tokens_per_second)
    step = min(step_s)

    t = time.perf_counter()
    tool_constraint(model, tools, "required", fmt)      # first use also builds llguidance's tokenizer
    first = time.perf_counter() - t
    t = time.perf_counter()
    tool_constraint(model, tools, "required", fmt)
    compile_s = time.perf_counter() - t
    out = {"model": os.path.basename(path), "format": fmt.name + ("" if fmt.native else " (tools in the system prompt)"),
           "decode_step_ms": round(step * 1000, 2),
           "tokenizer_and_first_compile_ms": round(first * 1000, 1), "compile_ms": round(compile_s * 1000, 1)}

    spent, count, gen_per_token, valid, calls_seen = 0.0, 0, [], 0, 0
    for seed in range(args.runs):
        timed = Timed(tool_constraint(model, tools, "required", fmt))
        gen = model.generate([], plain.with_(seed=seed, max_new_tokens=args.tokens * 3), prompt_ids=ids,
                             constraint=timed)
        list(gen)
        spent, count = spent + timed.seconds, count + len(timed.tokens)
        if gen.stats.tokens_per_second:
            gen_per_token.append(1 / gen.stats.tokens_per_second)
        _content, calls = split_tool_calls(model.detokenize(gen.token_ids), fmt, tools)
        calls_seen += len(calls)
        valid += sum(c.error is None for c in calls)
    per = spent / max(count, 1)
    whole = min(gen_per_token) if gen_per_token else 0.0
    out["required_call"] = {"constraint_ms_per_token": round(per * 1000, 3),
                            "constraint_vs_decode_step": round(per / step, 4),
                            "generation_ms_per_token": round(whole * 1000, 2),
                            "generation_vs_unconstrained": round(whole / step, 3) if whole else None,
                            "tokens": count, "calls_valid": f"{valid}/{calls_seen}"}

    spent, count = 0.0, 0
    for seed in range(args.runs):      # auto: text before any call is only watched for the marker
        timed = Timed(tool_constraint(model, tools, "auto", fmt))
        gen = model.generate([], plain.with_(seed=seed), prompt_ids=ids, constraint=timed, ignore_eos=True)
        list(gen)
        if not timed.inner.active:
            spent, count = spent + timed.seconds, count + len(timed.tokens)
    out["auto_text"] = {"constraint_ms_per_token": round(spent / max(count, 1) * 1000, 4),
                        "constraint_vs_decode_step": round(spent / max(count, 1) / step, 5), "tokens": count}
    out["target"] = "constraint_vs_decode_step <= 0.10"
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

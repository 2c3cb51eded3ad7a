"""Structured output: what masking the logits costs per token, against a decode step, same run.

    python benchmarks/bench_structured.py [--model PATH] [--tokens 64] [--outlines-path DIR]

llguidance (the library the engine uses, engine/constrained.py) is timed inside real
constrained generations: mask (compute the allowed set, apply it to the logits) plus advance
(feed the sampled token), per token. The decode step is an unconstrained generation's time per
token. With --outlines-path (a folder holding outlines_core, e.g. from `pip install --no-deps
--target DIR outlines-core`), outlines-core is timed on the same token sequences for comparison.
Prints one JSON object; the target is mask <= 10% of a decode step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatgui.common.prompt import PromptMessage  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "hobbies": {"type": "array", "items": {"type": "string"}, "maxItems": 4}},
    "required": ["name", "age", "hobbies"], "additionalProperties": False}
CHAT = [PromptMessage.user("Describe a person as JSON with name, age and hobbies.")]


class Timed:
    """Wraps a constraint and adds up the time spent in it."""

    def __init__(self, inner):
        self.inner, self.seconds, self.tokens = inner, 0.0, []

    def mask(self, logits):
        t = time.perf_counter()
        out = self.inner.mask(logits)
        self.seconds += time.perf_counter() - t
        return out

    def advance(self, token_id):
        t = time.perf_counter()
        self.inner.advance(token_id)
        self.seconds += time.perf_counter() - t
        self.tokens.append(int(token_id))

    @property
    def failed(self):     # the generation loop asks whether the grammar engine gave up
        return self.inner.failed


def outlines_cost(model, schema, token_runs) -> dict:
    """outlines-core on the same token sequences: compile once, then mask + advance per token."""
    import torch
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    from chatgui.engine.token_bytes import model_vocabulary_bytes

    t = time.perf_counter()
    by_bytes: dict[bytes, list[int]] = {}
    for i, b in enumerate(model_vocabulary_bytes(model)):
        if i not in model.tok.special_ids:
            by_bytes.setdefault(b, []).append(i)
    index = Index(build_regex_from_schema(json.dumps(schema)), Vocabulary(model.tok.eos_id, by_bytes))
    compile_s = time.perf_counter() - t
    vocab = model.args.vocab_size
    logits = torch.zeros(vocab)
    spent, count = 0.0, 0
    for tokens in token_runs:
        guide = Guide(index)
        for tid in tokens:
            t = time.perf_counter()
            allowed = torch.zeros(vocab, dtype=torch.bool)
            allowed[torch.tensor(guide.get_tokens(), dtype=torch.long)] = True
            logits.masked_fill(~allowed, float("-inf"))
            guide.advance(tid)
            spent += time.perf_counter() - t
            count += 1
    return {"compile_ms": round(compile_s * 1000, 1), "mask_ms_per_token": round(spent / max(count, 1) * 1000, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--outlines-path", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        __import__("torch").set_num_threads(args.threads)

    from chatgui.engine import SamplingSettings, default_model_path, load_model
    from chatgui.engine.constrained import json_constraint

    path = args.model or str(default_model_path(fetch=False) or "/work/models/smollm2-135m-q4_1.gguf")
    model = load_model(path, device="cpu", context_length=1024)
    plain = SamplingSettings(temperature=0.8, seed=1, max_new_tokens=args.tokens)
    list(model.generate(CHAT, plain, ignore_eos=True))           # warm-up
    step_s = []
    for _ in range(args.runs):
        gen = model.generate(CHAT, plain, ignore_eos=True)
        list(gen)
        step_s.append(1 / gen.stats.tokens_per_second)
    step = min(step_s)

    t = time.perf_counter()
    json_constraint(model, SCHEMA)            # first compile also builds the tokenizer (once per model)
    first_compile = time.perf_counter() - t
    out = {"model": os.path.basename(path), "decode_step_ms": round(step * 1000, 2),
           "llguidance_tokenizer_and_first_compile_ms": round(first_compile * 1000, 1)}
    for name, schema in (("json_schema", SCHEMA), ("json_object", None)):
        t = time.perf_counter()
        json_constraint(model, schema)
        compile_s = time.perf_counter() - t
        spent, count, runs, valid = 0.0, 0, [], 0
        for seed in range(args.runs):
            timed = Timed(json_constraint(model, schema))
            gen = model.generate(CHAT, plain.with_(seed=seed, max_new_tokens=args.tokens * 2), constraint=timed)
            list(gen)
            spent, count = spent + timed.seconds, count + len(timed.tokens)
            runs.append(timed.tokens)
            try:
                json.loads(gen.text)
                valid += gen.stats.finish_reason == "stop"
            except ValueError:
                pass
        per = spent / max(count, 1)
        out[f"llguidance_{name}"] = {"compile_ms": round(compile_s * 1000, 1),
                                     "mask_ms_per_token": round(per * 1000, 3),
                                     "mask_vs_decode_step": round(per / step, 3), "tokens": count,
                                     "replies_complete_and_parsing": f"{valid}/{args.runs}"}
        if name == "json_schema" and args.outlines_path:
            sys.path.insert(0, args.outlines_path)
            try:
                oc = outlines_cost(model, schema, runs)
                oc["mask_vs_decode_step"] = round(oc["mask_ms_per_token"] / 1000 / step, 3)
                out["outlines_core_json_schema"] = oc
            except ImportError as e:
                out["outlines_core_json_schema"] = f"unavailable: {e}"
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

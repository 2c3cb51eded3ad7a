"""Several candidates per prompt: tokens/s per candidate and in all, for n = 1, 3, 8.

    python benchmarks/bench_batch.py [--model PATH] [--tokens 64] [--device cpu|cuda]

n = 1 is the ordinary Generation (the single-token decode step); n > 1 is engine/batch.py (one
forward pass carries all n). "sequential_equivalent_tok_s" is what n replies one after another
would give in all: the n = 1 figure. Prints one JSON object. The machine may be shared: compare
the figures of one run with each other, not with another run's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatgui.common.prompt import PromptMessage  # noqa: E402

CHAT = [PromptMessage.user("Write a short story about a robot who learns to paint.")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    ap.add_argument("--tokens", type=int, default=64, help="tokens per candidate")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="runs per n; the best is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads:
        __import__("torch").set_num_threads(args.threads)

    from chatgui.engine import SamplingSettings, default_model_path, load_model
    from chatgui.engine.batch import generate_batch

    path = args.model or str(default_model_path(fetch=False) or "/work/models/smollm2-135m-q4_1.gguf")
    model = load_model(path, device=args.device, context_length=1024)
    settings = SamplingSettings(temperature=0.8, seed=1, max_new_tokens=args.tokens)

    def single() -> float:
        gen = model.generate(CHAT, settings, ignore_eos=True)
        list(gen)
        return gen.stats.tokens_per_second

    def batch(n: int) -> float:
        b = generate_batch(model, CHAT, settings, n, ignore_eos=True)
        list(b.events())
        return b.stats.tokens_per_second

    single()      # warm-up: builds the decode step, touches the weights
    results = {}
    for n in (1, 3, 8):
        best = 0.0
        for _ in range(args.repeats):
            best = max(best, single() if n == 1 else batch(n))
        results[n] = best
    base = results[1]
    out = {
        "model": os.path.basename(path), "device": args.device, "tokens_per_candidate": args.tokens,
        "threads": __import__("torch").get_num_threads(),
        "n": {str(n): {"total_tok_s": round(tps, 1), "per_candidate_tok_s": round(tps / n, 1),
                       "total_vs_n1": round(tps / base, 2)} for n, tps in results.items()},
        "note": "decode phase only (after the first token); n=1 uses the single-token fast path",
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Decode speed, ours against llama.cpp, in ONE process with bursts alternated (issue 13).

    python benchmarks/bench_interleaved.py --model FILE [--bursts 8] [--burst 24]

On a shared, noisy machine two separate runs are minutes apart and see different loads; here
both engines are loaded side by side and greedy-decode alternately, `burst` tokens at a time, from
the same short chat, so each pair of bursts sees about the same load. Prints each engine's median
tok/s and the median of the per-pair ratios (ours / llama.cpp). llama-cpp-python is a
benchmark-only tool, never an app dependency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from chatgui.common.prompt import PromptMessage  # noqa: E402

PROMPT = [PromptMessage.user("Tell me a long story.")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bursts", type=int, default=8)
    ap.add_argument("--burst", type=int, default=24)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    import torch
    from llama_cpp import Llama

    from chatgui.engine import SamplingSettings, load_model

    torch.set_num_threads(args.threads)
    m = load_model(args.model, device="cpu", context_length=2048)
    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads,
                verbose=False)
    n = args.bursts * args.burst + 8
    ours = iter(m.generate(PROMPT, SamplingSettings(temperature=0, repeat_penalty=1.0, max_new_tokens=n),
                           ignore_eos=True))
    ids = llm.tokenize(m.render_chat(PROMPT).encode(), add_bos=False, special=True)
    ref = iter(llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0))
    for _ in range(4):      # warm-up (and prefill)
        next(ours), next(ref)

    def burst(it) -> float:
        t = time.perf_counter()
        for _ in range(args.burst):
            next(it)
        return args.burst / (time.perf_counter() - t)

    a, b = [], []
    for i in range(args.bursts):
        if i % 2:
            b.append(burst(ref)), a.append(burst(ours))
        else:
            a.append(burst(ours)), b.append(burst(ref))
    ratios = [x / y for x, y in zip(a, b)]
    print(json.dumps({"model": os.path.basename(args.model), "ours_tok_s": round(statistics.median(a), 1),
                      "llama_cpp_tok_s": round(statistics.median(b), 1),
                      "ratio_median": round(statistics.median(ratios), 3),
                      "ratios": [round(r, 2) for r in ratios]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

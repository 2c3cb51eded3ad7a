"""CPU time per decoded token and per prefilled token, ours against llama.cpp (issue 33).

    python benchmarks/bench_cpu_per_token.py --model FILE.gguf [--threads 1] [--rounds 3]

On a shared machine wall-clock speed says more about the neighbours than about the code; the CPU
time a process spends per token is steadier (memory contention still shows in it). Each side
runs in its own subprocess: ours (with the native kernels unless CHATGUI_KERNELS says
otherwise) and llama.cpp through llama-cpp-python (a benchmark-only tool: the reference
interpreter is --llama-python, default /work/refenv/bin/python). Decode: 64 greedy tokens after a
short chat prompt, the CPU time between the first and the last token. Prefill: a prompt of
--prefill tokens into an empty cache. Prints one JSON object: per round and the median.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Tell me a long story about a dragon who learns to cook."
STORY = ("Once upon a time, in a small village at the edge of a great forest, there lived a curious girl who "
         "loved to read. ")


def ours(path: str, threads: int, n_decode: int, n_prefill: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from chatgui.common.prompt import PromptMessage
    from chatgui.engine import SamplingSettings, load_model, native

    torch.set_num_threads(threads)
    native.set_threads(threads)
    m = load_model(path, device="cpu", context_length=2048)
    m.net.finish_loading()
    ids = (m.tokenize(STORY) * 200)[:n_prefill]
    m._cache_ids = []
    m._prefill(ids[:16])                             # warm-up
    m._cache_ids = []
    t = time.process_time()
    m._prefill(ids)
    prefill = time.process_time() - t
    s = SamplingSettings(temperature=0, repeat_penalty=1.0, max_new_tokens=n_decode)
    g = m.generate([PromptMessage.user(PROMPT)], s, ignore_eos=True)
    first = None
    for _ in g:
        if first is None:
            first = time.process_time()
    decode = time.process_time() - first
    return {"decode_cpu_ms": 1000 * decode / max(1, g.stats.generated_tokens - 1),
            "prefill_cpu_ms": 1000 * prefill / n_prefill, "kernels": native.path_name()}


def llama(path: str, threads: int, n_decode: int, n_prefill: int) -> dict:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    ids = (llm.tokenize(STORY.encode(), add_bos=False) * 200)[:n_prefill]
    llm.reset()
    llm.eval(ids[:16])
    llm.reset()
    t = time.process_time()
    llm.eval(ids)
    prefill = time.process_time() - t
    llm.reset()
    # llama.cpp's own generation loop, greedy, not stopping at an end-of-text token (as ours
    # with ignore_eos): its chat completion stops there, Gemma 3 at once
    first, n = None, 0
    for n, _ in enumerate(llm.generate(llm.tokenize(PROMPT.encode()), top_k=1, temp=0.0, repeat_penalty=1.0), 1):
        if first is None:
            first = time.process_time()
        if n >= n_decode:
            break
    decode = time.process_time() - first
    return {"decode_cpu_ms": 1000 * decode / max(1, n - 1), "prefill_cpu_ms": 1000 * prefill / n_prefill}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--sides", default="ours,llama")
    ap.add_argument("--llama-python", default="/work/refenv/bin/python")
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    if args.child:
        f = ours if args.child == "ours" else llama
        print(json.dumps(f(args.model, args.threads, args.decode, args.prefill)))
        return
    rounds = {side: [] for side in args.sides.split(",")}
    for _ in range(args.rounds):
        for side, side_rounds in rounds.items():      # interleaved: both see the same minutes
            py = sys.executable if side == "ours" else args.llama_python
            cmd = [py, __file__, "--child", side, "--model", args.model, "--threads", str(args.threads),
                   "--decode", str(args.decode), "--prefill", str(args.prefill)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=900, check=False)
            if out.returncode:
                sys.exit(out.stderr[-2000:])
            side_rounds.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {"model": Path(args.model).name, "threads": args.threads, "rounds": rounds}
    for key in ("decode_cpu_ms", "prefill_cpu_ms"):
        med = {side: statistics.median(r[key] for r in rs) for side, rs in rounds.items()}
        result[key] = {side: round(v, 2) for side, v in med.items()}
        if "ours" in med and "llama" in med:
            result[key.replace("_cpu_ms", "_speed_ratio")] = round(med["llama"] / med["ours"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

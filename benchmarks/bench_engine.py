"""Engine speed on the default model, optionally against llama.cpp on the same file, same run.

    python benchmarks/bench_engine.py [--reference llama-cpp] [--device cpu|cuda] [--quick]

Prints one JSON object. Each engine runs in its own subprocess so peak RSS is its own. The
reference needs llama-cpp-python (a benchmark-only tool, never an app dependency); without it
the reference is reported as unavailable and the rest still runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# Each engine runs with the environment the user had (OpenMP settings included), untouched by the
# other's imports.
ORIGINAL_ENV = dict(os.environ)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

QUESTION = "What is the capital of France?"
STORY = ("Once upon a time, in a small village at the edge of a great forest, there lived a curious girl who "
         "loved to read. ")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def long_ids(tokenize, n: int) -> list[int]:
    ids = []
    while len(ids) < n:
        ids += tokenize(STORY)
    return ids[:n]


def run_ours(path: str, device: str, quick: bool, after=None) -> dict:
    """after(model) -> dict: more measurements on the same loaded model (bench_models.py)."""
    import torch

    from chatgui.common.prompt import PromptMessage
    from chatgui.engine import SamplingSettings, load_model

    torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    t0 = time.perf_counter()
    m = load_model(path, device=device, context_length=4352)
    load_s = time.perf_counter() - t0
    m.net.finish_loading()          # weights packed in the background (the first forward pass waits)
    ready_s = time.perf_counter() - t0
    greedy = SamplingSettings(temperature=0, repeat_penalty=1.0, max_new_tokens=1)

    def first_token_time():
        m._cache_ids = []                      # cold: no reused prefix
        t = time.perf_counter()
        next(iter(m.generate([PromptMessage.user(QUESTION)], greedy)))
        return time.perf_counter() - t

    first_token_time()                         # warm-up
    ttft = min(first_token_time() for _ in range(3))

    n_prefill = 200 if quick else 1000
    ids = long_ids(m.tokenize, n_prefill)
    m._cache_ids = []
    t = time.perf_counter()
    m._prefill(ids)
    prefill_tps = n_prefill / (time.perf_counter() - t)

    def decode_tps(messages, n):
        g = m.generate(messages, greedy.with_(max_new_tokens=n), ignore_eos=True)
        for _ in g:
            pass
        return g.stats.tokens_per_second

    n_decode = 64 if quick else 256
    short = decode_tps([PromptMessage.user("Tell me a long story.")], n_decode)
    ctx_tokens = 1000 if quick else 4000
    filler = m.detokenize(long_ids(m.tokenize, ctx_tokens))
    long = decode_tps([PromptMessage.user(filler)], 64)
    more = after(m) if after else {}
    return {**more, "engine": "chatgui", "device": str(m.device), "load_s": round(load_s, 3),
            "ready_s": round(ready_s, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1), "ttft_s": round(ttft, 4),
            "prefill_tok_s": round(prefill_tps, 1), "prefill_tokens": n_prefill,
            "decode_tok_s": round(short, 1), "decode_tokens": n_decode,
            "decode_long_ctx_tok_s": round(long, 1), "long_ctx_tokens": ctx_tokens}


def run_llama_cpp(path: str, quick: bool, after=None) -> dict:
    from llama_cpp import Llama

    threads = os.cpu_count() or 2
    t0 = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=4352, n_threads=threads, n_threads_batch=threads, verbose=False)
    load_s = time.perf_counter() - t0

    def first_token_time():
        llm.reset()
        t = time.perf_counter()
        for _ in llm.create_chat_completion([{"role": "user", "content": QUESTION}], temperature=0, max_tokens=1,
                                            stream=True):
            break
        return time.perf_counter() - t

    first_token_time()
    ttft = min(first_token_time() for _ in range(3))
    tok = lambda s: llm.tokenize(s.encode(), add_bos=False, special=True)  # noqa: E731
    n_prefill = 200 if quick else 1000
    ids = long_ids(tok, n_prefill)
    llm.reset()
    t = time.perf_counter()
    llm.eval(ids)
    prefill_tps = n_prefill / (time.perf_counter() - t)

    def decode_tps(prompt_ids, n):
        llm.reset()
        got, t_first = 0, None
        for _ in llm.generate(prompt_ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            got += 1
            if t_first is None:
                t_first = time.perf_counter()
            if got >= n:
                break
        return (got - 1) / (time.perf_counter() - t_first)

    n_decode = 64 if quick else 256
    short = decode_tps(tok("<|im_start|>user\nTell me a long story.<|im_end|>\n<|im_start|>assistant\n"), n_decode)
    ctx_tokens = 1000 if quick else 4000
    long = decode_tps(long_ids(tok, ctx_tokens), 64)
    import llama_cpp

    more = after(llm) if after else {}
    return {**more, "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", "load_s": round(load_s, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1), "ttft_s": round(ttft, 4),
            "prefill_tok_s": round(prefill_tps, 1), "prefill_tokens": n_prefill,
            "decode_tok_s": round(short, 1), "decode_tokens": n_decode,
            "decode_long_ctx_tok_s": round(long, 1), "long_ctx_tokens": ctx_tokens}


def in_subprocess(which: str, args) -> dict:
    cmd = [sys.executable, __file__, "--_child", which, "--model", args.model, "--device", args.device]
    if args.quick:
        cmd.append("--quick")
    env = ORIGINAL_ENV if which == "llama-cpp" else os.environ
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", choices=["none", "llama-cpp"], default="none")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=None, help="GGUF file (default: the default model, fetched if needed)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (smoke test of the script)")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.model is None:
        from chatgui.models.default_model import default_model_path

        args.model = str(default_model_path(fetch=True))
    if args._child == "ours":
        print(json.dumps(run_ours(args.model, args.device, args.quick)))
        return 0
    if args._child == "llama-cpp":
        print(json.dumps(run_llama_cpp(args.model, args.quick)))
        return 0
    out = {"model": os.path.basename(args.model), "cpu_count": os.cpu_count(), "ours": in_subprocess("ours", args)}
    if args.reference == "llama-cpp":
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            out["reference"] = {"error": "llama-cpp-python is not installed (pip install llama-cpp-python)"}
        else:
            out["reference"] = in_subprocess("llama-cpp", args)
        ref, ours = out["reference"], out["ours"]
        if "error" not in ref and "error" not in ours:
            out["ratios_ours_over_reference"] = {
                k: round(ours[k] / ref[k], 3) for k in ("decode_tok_s", "prefill_tok_s", "decode_long_ctx_tok_s",
                                                        "ttft_s", "load_s", "peak_rss_mb")}
    ours = out["ours"]
    if "error" not in ours:
        out["decode_long_ctx_over_short"] = round(ours["decode_long_ctx_tok_s"] / ours["decode_tok_s"], 3)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

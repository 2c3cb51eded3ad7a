"""Mixture-of-Experts decode against llama.cpp on a synthetic qwen3moe file with Qwen3-30B-A3B's
layer shapes (dim 2,048, 32 query / 4 KV heads, 128 experts of 768, 8 used a token) but few
layers and the tests' tiny vocabulary; random Q8_0 weights (the gguf package quantizes no K-quant).

    python benchmarks/bench_moe.py [--layers 4] [--tokens 16] [--file /tmp/moe.gguf]

Writes the file once (about 0.65 GB a layer), then times greedy decode in two subprocesses (the
engine, and llama.cpp through llama-cpp-python, a benchmark-only tool): tokens a second after a
16-token prompt, and peak RSS. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHAPES = dict(dim=2048, n_heads=32, n_kv_heads=4, hidden=6144)
EXPERTS = {"expert_count": 128, "expert_used_count": 8, "expert_feed_forward_length": 768}
PROMPT = list(range(40, 56))


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: ru_maxrss would carry the parent's peak across the
    fork and exec, and the parent may just have held the whole file it wrote)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(path: str, layers: int) -> None:
    sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
    from tiny_gguf import write_tiny_model
    write_tiny_model(path, arch="qwen3moe", qtype="Q8_0", n_layers=layers, metadata=EXPERTS, **SHAPES)


def run_engine(path: str, tokens: int) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    from chatgui.engine.chat_model import load_model

    t0 = time.perf_counter()
    m = load_model(path, device="cpu")
    load = time.perf_counter() - t0
    logits = m.net(torch.tensor([PROMPT]), 0, last_only=True)[0, -1]
    t0 = time.perf_counter()
    for i in range(tokens):
        nxt = int(logits.argmax())
        logits = m.net(torch.tensor([[nxt]]), len(PROMPT) + i)[0, -1]
    return {"load_s": load, "decode_tok_s": tokens / (time.perf_counter() - t0), "peak_rss_mb": peak_rss_mb()}


def run_llama_cpp(path: str, tokens: int) -> dict:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    m = Llama(model_path=path, n_ctx=256, n_threads=2, verbose=False)
    load = time.perf_counter() - t0
    m.eval(PROMPT)
    t0 = time.perf_counter()
    for _ in range(tokens):
        m.eval([int(m.scores[m.n_tokens - 1].argmax())])
    return {"load_s": load, "decode_tok_s": tokens / (time.perf_counter() - t0), "peak_rss_mb": peak_rss_mb()}


def in_subprocess(python: str, which: str, path: str, tokens: int) -> dict:
    out = subprocess.run([python, __file__, "--run", which, "--file", path, "--tokens", str(tokens)],
                         capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--file", default="/tmp/chatgui-bench-moe.gguf")
    p.add_argument("--reference-python", default=sys.executable, help="a Python with llama-cpp-python")
    p.add_argument("--run", choices=["engine", "llama-cpp"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run:
        print(json.dumps(run_engine(a.file, a.tokens) if a.run == "engine" else run_llama_cpp(a.file, a.tokens)))
        return
    if not os.path.exists(a.file):
        write(a.file, a.layers)
    result = {"file": a.file, "file_mb": os.path.getsize(a.file) / 2**20, "layers": a.layers, **EXPERTS,
              "engine": in_subprocess(sys.executable, "engine", a.file, a.tokens),
              "llama_cpp": in_subprocess(a.reference_python, "llama-cpp", a.file, a.tokens)}
    e, r = result["engine"], result["llama_cpp"]
    if "error" not in e and "error" not in r:
        result["decode_ratio"] = e["decode_tok_s"] / r["decode_tok_s"]
        result["rss_ratio"] = e["peak_rss_mb"] / r["peak_rss_mb"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

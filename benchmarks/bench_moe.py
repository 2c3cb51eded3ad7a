"""Mixture-of-Experts decode against llama.cpp on a synthetic qwen3moe file with Qwen3-30B-A3B's
layer shapes (dim 2,048, 32 query / 4 KV heads, 128 experts of 768, 8 used a token) but few
layers and the tests' tiny vocabulary; random Q8_0 weights (the gguf package quantizes no K-quant).
`--model qwen35`: the same for a Gated DeltaNet model with Qwen3.5-0.8B's layer shapes (dim 1,024,
16 DeltaNet heads of 128, every 4th layer attention, MLP 3,584), 8 layers by default.

    python benchmarks/bench_moe.py [--model qwen3moe|qwen35] [--layers 4] [--tokens 16] [--threads 2] [--file F]

Writes the file once (qwen3moe: about 0.65 GB a layer), then times greedy decode in two subprocesses
(the engine, and llama.cpp through llama-cpp-python, a benchmark-only tool): tokens a second after
a 16-token prompt (4 tokens' warm-up), CPU time per token (the steadier figure on a shared
machine), and peak RSS. Prints one JSON object.
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
DELTANET = {"full_attention_interval": 4, "ssm.conv_kernel": 4, "ssm.state_size": 128, "ssm.group_count": 16,
            "ssm.time_step_rank": 16, "ssm.inner_size": 2048, "rope.dimension_count": 64,
            "rope.dimension_sections": (11, 11, 10, 0)}
# model -> (architecture, shapes, metadata, default layers, default file)
MODELS = {"qwen3moe": ("qwen3moe", SHAPES, EXPERTS, 4, "/tmp/chatgui-bench-moe.gguf"),
          "qwen35": ("qwen35", dict(dim=1024, n_heads=8, n_kv_heads=2, hidden=3584), DELTANET, 8,
                     "/tmp/chatgui-bench-qwen35.gguf")}
PROMPT = list(range(40, 56))
WARMUP = 4          # tokens before the timed ones (default of --warmup)


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


def write(path: str, model: str, layers: int) -> None:
    sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
    from tiny_gguf import write_tiny_model
    arch, shapes, metadata, _, _ = MODELS[model]
    write_tiny_model(path, arch=arch, qtype="Q8_0", n_layers=layers, metadata=metadata, **shapes)


def timed(step, tokens: int, warmup: int) -> dict:
    """step(i) decodes the i-th token after the prompt: wall and CPU time of `tokens` of them,
    after `warmup` ones (first touches of the file's pages, one-time set-ups)."""
    for i in range(warmup):
        step(i)
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + tokens):     # (a qwen3moe token touches ~8 experts' pages not yet read)
        step(i)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"decode_tok_s": tokens / wall, "decode_cpu_ms_per_tok": 1000 * cpu / tokens}


def run_engine(path: str, tokens: int, threads: int, warmup: int) -> dict:
    sys.path.insert(0, ROOT)
    import torch
    from chatgui.engine.chat_model import load_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    m = load_model(path, device="cpu")
    load = time.perf_counter() - t0
    logits = [m.net(torch.tensor([PROMPT]), 0, last_only=True)[0, -1]]

    def step(i):
        logits[0] = m.net(torch.tensor([[int(logits[0].argmax())]]), len(PROMPT) + i)[0, -1]
    return {"load_s": load, **timed(step, tokens, warmup), "peak_rss_mb": peak_rss_mb()}


def run_llama_cpp(path: str, tokens: int, threads: int, warmup: int) -> dict:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    m = Llama(model_path=path, n_ctx=256, n_threads=threads, verbose=False)
    load = time.perf_counter() - t0
    m.eval(PROMPT)
    result = timed(lambda i: m.eval([int(m.scores[m.n_tokens - 1].argmax())]), tokens, warmup)
    return {"load_s": load, **result, "peak_rss_mb": peak_rss_mb()}


def in_subprocess(python: str, which: str, path: str, tokens: int, threads: int, warmup: int) -> dict:
    out = subprocess.run([python, __file__, "--run", which, "--file", path, "--tokens", str(tokens),
                          "--threads", str(threads), "--warmup", str(warmup)], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(MODELS), default="qwen3moe")
    p.add_argument("--layers", type=int)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=WARMUP, help="tokens decoded before timing (40: experts' pages read)")
    p.add_argument("--file")
    p.add_argument("--reference-python", default=sys.executable, help="a Python with llama-cpp-python")
    p.add_argument("--run", choices=["engine", "llama-cpp"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run:
        run = run_engine if a.run == "engine" else run_llama_cpp
        print(json.dumps(run(a.file, a.tokens, a.threads, a.warmup)))
        return
    _, _, metadata, layers, default_file = MODELS[a.model]
    a.layers, a.file = a.layers or layers, a.file or default_file
    if not os.path.exists(a.file):
        write(a.file, a.model, a.layers)
    result = {"file": a.file, "file_mb": os.path.getsize(a.file) / 2**20, "model": a.model, "layers": a.layers,
              "threads": a.threads, "warmup": a.warmup,
              **{k: v for k, v in metadata.items() if not isinstance(v, tuple)},
              "engine": in_subprocess(sys.executable, "engine", a.file, a.tokens, a.threads, a.warmup),
              "llama_cpp": in_subprocess(a.reference_python, "llama-cpp", a.file, a.tokens, a.threads, a.warmup)}
    e, r = result["engine"], result["llama_cpp"]
    if "error" not in e and "error" not in r:
        result["decode_ratio"] = e["decode_tok_s"] / r["decode_tok_s"]
        result["decode_ratio_by_cpu_time"] = r["decode_cpu_ms_per_tok"] / e["decode_cpu_ms_per_tok"]
        result["rss_ratio"] = e["peak_rss_mb"] / r["peak_rss_mb"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

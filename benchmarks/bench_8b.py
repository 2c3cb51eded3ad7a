"""An 8B-class model against llama.cpp (issue 33): a synthetic llama-architecture file with
Llama-3-8B's shapes (dim 4,096, 32 layers, 32 query / 8 KV heads, feed-forward 14,336, vocabulary
128,256) and random Q4_K_M-style weights (Q4_K; Q6_K for the output head and, as llama.cpp's
Q4_K_M mix, attn_v and ffn_down in the first and last four layers and every third between),
written by this script.

    python benchmarks/bench_8b.py [--file /tmp/chatgui-bench-8b.gguf] [--tokens 8] [--keep]

Needs about 5 GB of free disk where --file goes (checked first) and as much free memory for the
page cache. The file is deleted afterwards unless --keep. Then, each in its own subprocess (the
engine, and llama.cpp through llama-cpp-python, a benchmark-only tool, never an app
dependency; --reference-python names an interpreter that has it): load time, a 16-token prompt,
greedy decode of --tokens tokens (tokens a second and CPU ms a token), and peak RSS. The targets:
RSS <= file size x 1.1 + the engine's KV cache (its cache buffers, as allocated), decode >= 0.95x llama.cpp. Prints one JSON
object. The weights are random bytes with sane scales: what is decoded is noise, the speed is real.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from bench_moe import peak_rss_mb   # this process's own peak (VmHWM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DIM, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 4096, 32, 32, 8, 14336, 128256
HEAD_DIM = DIM // HEADS
CONTEXT = 512
PROMPT = list(range(300, 316))
# bytes per block of 256 and where its float16 scales sit
BLOCK = {"Q4_K": (144, (0, 2)), "Q6_K": (210, (208,))}


def more_bits(layer: int) -> bool:
    """llama.cpp's Q4_K_M rule for attn_v and ffn_down: Q6_K in the first and last eighth of the
    layers and every third layer between."""
    eighth = LAYERS // 8
    return layer < eighth or layer >= LAYERS - eighth or (layer - eighth) % 3 == 2


def tensors() -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape as rows x cols, type) in file order."""
    out = [("token_embd.weight", (VOCAB, DIM), "Q4_K")]
    for i in range(LAYERS):
        b = f"blk.{i}."
        out += [(b + "attn_norm.weight", (DIM,), "F32"), (b + "attn_q.weight", (DIM, DIM), "Q4_K"),
                (b + "attn_k.weight", (KV_HEADS * HEAD_DIM, DIM), "Q4_K"),
                (b + "attn_v.weight", (KV_HEADS * HEAD_DIM, DIM), "Q6_K" if more_bits(i) else "Q4_K"),
                (b + "attn_output.weight", (DIM, DIM), "Q4_K"), (b + "ffn_norm.weight", (DIM,), "F32"),
                (b + "ffn_gate.weight", (FFN, DIM), "Q4_K"), (b + "ffn_up.weight", (FFN, DIM), "Q4_K"),
                (b + "ffn_down.weight", (DIM, FFN), "Q6_K" if more_bits(i) else "Q4_K")]
    return out + [("output_norm.weight", (DIM,), "F32"), ("output.weight", (VOCAB, DIM), "Q6_K")]


def random_blocks(qtype: str, n_blocks: int, rng) -> np.ndarray:
    """n_blocks random blocks whose float16 scales are small and finite."""
    size, scales = BLOCK[qtype]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for at in scales:
        b[:, at:at + 2] = (np.abs(rng.standard_normal(n_blocks)) * 0.002 + 1e-4).astype(np.float16).view(np.uint8).reshape(-1, 2)
    return b


def write(path: str) -> None:
    import gguf

    sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
    from tiny_gguf import CHATML, vocabulary

    tokens, types, merges = vocabulary()
    tokens = tokens + [f"tok{i}" for i in range(VOCAB - len(tokens))]
    types = types + [1] * (VOCAB - len(types))
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("synthetic-llama3-8b-q4_k_m")
    w.add_context_length(8192)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    rng = np.random.default_rng(0)
    pool = {q: random_blocks(q, 1 << 16, rng) for q in BLOCK}      # tiled: writing, not drawing, dominates
    plan = tensors()
    for name, shape, qtype in plan:
        if qtype == "F32":
            w.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
        else:
            nbytes = shape[0] * shape[1] // 256 * BLOCK[qtype][0]
            byte_shape = (shape[0], shape[1] // 256 * BLOCK[qtype][0])        # (the writer's convention)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=gguf.GGMLQuantizationType[qtype])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, qtype in plan:
        if qtype == "F32":
            w.write_tensor_data(np.ones(shape, dtype=np.float32))
            continue
        n = shape[0] * shape[1] // 256
        blocks = np.resize(pool[qtype], (n, BLOCK[qtype][0]))                   # repeats the pool
        w.write_tensor_data(blocks.reshape(shape[0], -1))
    w.close()


def run_engine(path: str, tokens: int, threads: int) -> dict:
    sys.path.insert(0, ROOT)
    import torch

    from chatgui.engine import native
    from chatgui.engine.chat_model import load_model

    torch.set_num_threads(threads)
    native.set_threads(threads)
    t0 = time.perf_counter()
    m = load_model(path, device="cpu", context_length=CONTEXT)
    m.net.finish_loading()
    load = time.perf_counter() - t0
    with torch.inference_mode():
        logits = m.net(torch.tensor([PROMPT]), 0, last_only=True)[0, -1]
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(tokens):
            logits = m.net(torch.tensor([[int(logits.argmax())]]), len(PROMPT) + i)[0, -1]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    kv = sum(b.nbytes for name, b in m.net.named_buffers() if name.endswith("cache.kv"))
    return {"load_s": round(load, 2), "decode_tok_s": round(tokens / wall, 3), "decode_cpu_ms": round(1000 * cpu / tokens, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1), "kv_cache_mb": round(kv / 2**20, 1), "kernels": native.path_name()}


def run_llama_cpp(path: str, tokens: int, threads: int) -> dict:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    m = Llama(model_path=path, n_ctx=CONTEXT, n_threads=threads, n_threads_batch=threads, verbose=False)
    load = time.perf_counter() - t0
    m.eval(PROMPT)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(tokens):
        m.eval([int(m.scores[m.n_tokens - 1].argmax())])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"load_s": round(load, 2), "decode_tok_s": round(tokens / wall, 3), "decode_cpu_ms": round(1000 * cpu / tokens, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def in_subprocess(python: str, which: str, a) -> dict:
    out = subprocess.run([python, __file__, "--run", which, "--file", a.file, "--tokens", str(a.tokens),
                          "--threads", str(a.threads)], capture_output=True, text=True, check=False)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--file", default="/tmp/chatgui-bench-8b.gguf")
    p.add_argument("--tokens", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="engine and llama.cpp runs, interleaved")
    p.add_argument("--keep", action="store_true", help="keep the file afterwards")
    p.add_argument("--reference-python", default="/work/refenv/bin/python", help="a Python with llama-cpp-python")
    p.add_argument("--run", choices=["engine", "llama-cpp"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run:
        f = run_engine if a.run == "engine" else run_llama_cpp
        print(json.dumps(f(a.file, a.tokens, a.threads)))
        return
    wrote = False
    if not os.path.exists(a.file):
        need = sum(s[0] * s[1] // 256 * BLOCK[q][0] for _, s, q in tensors() if q != "F32") + (64 << 20)
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(a.file))).free
        if free < need * 1.05:
            sys.exit(f"needs {need / 2**30:.1f} GiB free beside {a.file}, has {free / 2**30:.1f}")
        t0 = time.perf_counter()
        write(a.file)
        wrote = True
        print(f"wrote {a.file} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    try:
        size = os.path.getsize(a.file)
        result = {"file_mb": round(size / 2**20, 1), "threads": a.threads, "tokens": a.tokens, "engine": [], "llama_cpp": []}
        for _ in range(a.rounds):
            result["engine"].append(in_subprocess(sys.executable, "engine", a))
            result["llama_cpp"].append(in_subprocess(a.reference_python, "llama-cpp", a))
        ok = [(e, r) for e, r in zip(result["engine"], result["llama_cpp"]) if "error" not in e and "error" not in r]
        if ok:
            e = ok[-1][0]
            limit = size * 1.1 / 2**20 + e["kv_cache_mb"]
            result["rss_limit_mb"] = round(limit, 1)
            result["rss_within_limit"] = max(x["peak_rss_mb"] for x, _y in ok) <= limit
            result["decode_ratio_wall"] = [round(x["decode_tok_s"] / y["decode_tok_s"], 3) for x, y in ok]
            result["decode_ratio_cpu"] = [round(y["decode_cpu_ms"] / x["decode_cpu_ms"], 3) for x, y in ok]
        print(json.dumps(result, indent=1))
    finally:
        if wrote and not a.keep:
            os.remove(a.file)


if __name__ == "__main__":
    main()

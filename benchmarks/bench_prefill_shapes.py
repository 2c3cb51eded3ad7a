"""Prefill products per shape (issue 33): the native kernels' GEMM against torch's own kernels on
the same weights, one thread, GMAC/s by CPU time.

    python benchmarks/bench_prefill_shapes.py

For each shape (the 0.5B/1.5B/SmolLM2 layers' types and sizes, random blocks) and 16, 128 and
512 rows: NativeProduct on the blocks as stored, and `x @ W.T` in float32 and bfloat16 and
torch's dynamic int8 Linear (FBGEMM) on the dequantized weights (those forms need a converted
copy of every weight; see benchmarks/results/2026-12-07-kernels-32wide.md). Prints one line each.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_kernels import random_tensor

from chatgui.engine import native
from chatgui.engine.native_linear import NativeProduct
from chatgui.engine.quant import dequantize

SHAPES = [("Q4_K", 8960, 1536), ("Q6_K", 1536, 8960), ("Q4_K", 1536, 1536), ("Q5_0", 4864, 896), ("Q8_0", 896, 896),
          ("Q4_1", 1536, 576)]


def rate(f, x, macs, seconds=0.5) -> float:
    f(x)
    n, t = 0, time.process_time()
    while time.process_time() - t < seconds:
        f(x)
        n += 1
    return n * macs / (time.process_time() - t) / 1e9


def main():
    if not native.available():
        sys.exit(f"native kernels {native.why_not()}")
    torch.set_num_threads(1)
    native.set_threads(1)
    for qt, n, k in SHAPES:
        t = random_tensor(qt, n, k)
        p, w = NativeProduct([t]), dequantize("random", t).float()
        wb = w.to(torch.bfloat16)
        qlin = torch.ao.nn.quantized.dynamic.Linear(k, n, dtype=torch.qint8)
        scales = (w.abs().amax(1) / 127).clamp_min(1e-8)
        qlin.set_weight_bias(torch.quantize_per_channel(w, scales, torch.zeros(n, dtype=torch.long), 0, torch.qint8), None)
        for m in (16, 128, 512):
            x = torch.randn(m, k)
            macs = m * n * k
            print(f"{qt} {n}x{k} m={m}: native {rate(p, x, macs):.1f}, float32 {rate(lambda v, w=w: v @ w.T, x, macs):.1f}, "
                  f"bfloat16 {rate(lambda v, wb=wb: v @ wb.T, x.bfloat16(), macs):.1f}, FBGEMM int8 {rate(qlin, x, macs):.1f} GMAC/s",
                  flush=True)


if __name__ == "__main__":
    main()

"""Micro-benchmark of the native kernels (issue 33): GMAC/s per GGUF format and path, one thread.

    python benchmarks/bench_kernels.py [--formats Q4_0,Q8_0] [--paths avx512,avx2] [--rows 1,4,64]

For each format: random blocks of two sizes, a layer that stays in cache (1,536 x 576, SmolLM2's
gate) and a set of matrices of 96 MB in all, taken in turn so that every product streams its
weights from memory (as decoding a real model does), times m activation rows. Speed is
multiply-adds per CPU second of this process (the library set to one thread), so waiting for a
shared machine's cores does not count; memory contention still does. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "tests")]

from chatgui.engine import native
from chatgui.engine.native_linear import NativeProduct
from quant_blocks import BLOCK_BYTES, random_tensor

def gmacs(products, k: int, rows: int, m: int, seconds: float = 0.6) -> float:
    x = torch.randn(m, k)
    for p in products:
        p(x)
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        for p in products:
            p(x)
            n += 1
    return n * rows * k * m / (time.process_time() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--formats", default=",".join(native.TYPES))
    ap.add_argument("--paths", default="avx512,avx2,portable")
    ap.add_argument("--rows", default="1,4,64")
    ap.add_argument("--seconds", type=float, default=0.6)
    args = ap.parse_args()
    if not native.available():
        sys.exit(f"native kernels {native.why_not()}")
    native.set_threads(1)
    torch.set_num_threads(1)
    for qtype in args.formats.split(","):
        cached = [NativeProduct([random_tensor(qtype, 1536, 768 if native.BLOCK_ELEMS[qtype] == 256 else 576)])]
        k = 4096
        n_big = int(96e6 // (4096 * 4096 * BLOCK_BYTES[qtype] / native.BLOCK_ELEMS[qtype])) + 1
        streamed = [NativeProduct([random_tensor(qtype, 4096, k, seed=i)]) for i in range(n_big)]
        for path in args.paths.split(","):
            if not native.supports(path):
                continue
            native.select(path)
            for m in map(int, args.rows.split(",")):
                sec = args.seconds if path != "portable" else args.seconds / 3
                row = {"format": qtype, "path": path, "m": m,
                       "cached_gmacs": round(gmacs(cached, cached[0].in_features, 1536, m, sec), 2),
                       "streamed_gmacs": round(gmacs(streamed, k, 4096, m, sec), 2)}
                print(json.dumps(row), flush=True)
        native.select(None)


if __name__ == "__main__":
    main()

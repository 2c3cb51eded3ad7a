"""Random GGUF quant blocks of each native format, for the kernel tests and benchmarks/bench_kernels.py."""
from __future__ import annotations

import gguf
import numpy as np

from chatgui.engine import native
from chatgui.engine.gguf_file import TensorInfo

BLOCK_BYTES = {"Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q8_0": 34, "Q4_K": 144, "Q5_K": 176,
               "Q6_K": 210, "IQ4_NL": 18, "IQ4_XS": 136, "MXFP4": 17}
FLOAT16_AT = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q4_K": [0, 2],
              "Q5_K": [0, 2], "Q6_K": [208], "IQ4_NL": [0], "IQ4_XS": [0], "MXFP4": []}


def random_tensor(qtype: str, rows: int, cols: int, seed: int = 0) -> TensorInfo:
    """Random blocks of a type: random bits, with finite float16 scales of ordinary size."""
    g = np.random.default_rng(seed)
    n = rows * cols // native.BLOCK_ELEMS[qtype]
    b = g.integers(0, 256, size=(n, BLOCK_BYTES[qtype]), dtype=np.uint8)
    for at in FLOAT16_AT[qtype]:
        b[:, at:at + 2] = (g.standard_normal(n) * 0.02).astype(np.float16).view(np.uint8).reshape(n, 2)
    if qtype == "MXFP4":
        b[:, 0] = g.integers(118, 130, size=n)          # the shared exponent: 2^-9 .. 2^2
    return TensorInfo(name=f"w.{qtype}", shape=(rows, cols), qtype=int(gguf.GGMLQuantizationType[qtype]),
                      qtype_name=qtype, data=b.reshape(-1))

"""Linear layers and output heads on the native kernels (issue 33; engine/native/).

The weights are the GGUF file's own blocks, read where the file is mapped: nothing is
converted, packed or cached, so a model answers at full speed from its first token, and its
resident memory is the file's pages it reads. Fused projections (q, k, v; gate, up) are one
NativeLinear over several tensors, each written into its own columns of one result; a row
order (the loader's RoPE permutation of q and k) is applied while reading, not by copying.
Activations are quantized to int8 per 32 values inside the library (as llama.cpp does; a
block of 32 keeps its scale as float16, as llama.cpp's Q8_0), so a result differs from the
float64 product by at most half a step of each activation block times the weights' sizes, plus
that float16 rounding (tests/test_native_kernels.py checks exactly that bound).
"""
from __future__ import annotations

import ctypes
import math
import weakref

import numpy as np
import torch
from torch import nn

from . import native
from .gguf_file import TensorInfo
from .rows import QuantRows


def usable(qtypes, in_features: int) -> bool:
    """Whether tensors of these GGUF types and row length can use the native kernels here."""
    return (native.available() and all(q in native.TYPES and in_features % native.BLOCK_ELEMS[q] == 0 for q in qtypes)
            and in_features % 32 == 0)


def _mapped_bytes(t: TensorInfo) -> np.ndarray:
    """The tensor's bytes where the file is mapped (no copy; the array keeps the mapping alive)."""
    raw = t.data.view(np.uint8)
    if not raw.flags.c_contiguous:
        raw = np.ascontiguousarray(raw)
    return raw


class NativeProduct:
    """x [M, K] float32 -> x @ W.T [M, N] over the segments' rows, in one library call."""

    def __init__(self, tensors: list[TensorInfo], row_orders: list[torch.Tensor | None] | None = None,
                 expert: int | None = None):
        """`expert`: of 3-D expert tensors [n_experts, rows, cols], expert e's rows only, a
        contiguous byte range of each (they start at e * rows * row_bytes): nothing is copied."""
        lib = native.library()
        if lib is None:
            raise RuntimeError(f"the native kernels are {native.why_not()}")
        self._cg_linear = lib.cg_linear
        k = tensors[0].shape[-1]
        self.in_features = k
        self._keep = []                          # what the segments point into
        segs = (native.Segment * len(tensors))()
        self.out_features = 0
        for seg, t, order in zip(segs, tensors, row_orders or [None] * len(tensors)):
            if t.shape[-1] != k or t.qtype_name not in native.TYPES or len(t.shape) != (2 if expert is None else 3):
                raise ValueError(f"tensor {t.name!r} ({t.qtype_name}, {t.shape}) cannot join this product")
            raw = _mapped_bytes(t)
            rows = t.shape[-2]
            if expert is not None:
                if not 0 <= expert < t.shape[0]:
                    raise ValueError(f"tensor {t.name!r} has no expert {expert} (of {t.shape[0]})")
                raw = raw.reshape(t.shape[0], -1)[expert]
            self.out_features += rows
            seg.type, seg.n_rows = native.TYPES[t.qtype_name], rows
            seg.row_bytes = raw.nbytes // rows
            seg.w = raw.ctypes.data
            self._keep.append(raw)
            if order is not None:
                ids = order.to(torch.int32).contiguous()
                if ids.numel() != rows or int(ids.min()) < 0 or int(ids.max()) >= rows:
                    raise ValueError(f"row order of {t.name!r} is not a permutation of its rows")
                seg.row_ids = ids.data_ptr()
                self._keep.append(ids)
        self._segs, self._nseg = segs, len(tensors)
        self._segs_ptr = ctypes.addressof(segs)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.stride(-1) != 1:
            x = x.float().contiguous()
        m, n = x.shape[0], self.out_features
        y = torch.empty(m, n)
        rc = self._cg_linear(self._nseg, self._segs_ptr, self.in_features, x.data_ptr(), m, x.stride(0),
                             y.data_ptr(), n)
        if rc:
            raise RuntimeError(f"native product failed (code {rc})")
        return y

    def bound(self, x: torch.Tensor, out: torch.Tensor, alpha: torch.Tensor | None = None,
              bias: torch.Tensor | None = None, accumulate: bool = False, next_product: NativeProduct | None = None):
        """A call with no arguments computing out = alpha * (x @ W.T) + bias (+ out, where
        accumulate) for fixed buffers (the decode step's): x [M, K], out [M, N], alpha [M]
        (float32, one per row of x) and bias [N] may be None. The whole call is one library
        call: no checks, allocations or torch ops each time (decode.py calls it per layer).
        next_product: the product the caller runs next; the pool warms its first bytes while
        the caller's Python runs in between (and stops before the call is freed, since the next
        product's memory may go with it)."""
        m = x.shape[0]
        for t, shape in ((x, (m, self.in_features)), (out, (m, self.out_features)),
                         (alpha, (m,)), (bias, (self.out_features,))):
            if t is not None and (t.dtype != torch.float32 or t.device.type != "cpu" or t.numel() != math.prod(shape)
                                  or t.stride(-1) != 1):
                raise ValueError(f"a bound native product takes float32 CPU buffers of {shape}, not {tuple(t.shape)}")
        keep = (x, out, alpha, bias, self, next_product)
        args = (self._nseg, self._segs_ptr, self.in_features, x.data_ptr(), m, x.stride(0) if x.dim() > 1 else 0,
                out.data_ptr(), out.stride(0) if out.dim() > 1 else 0,
                None if alpha is None else alpha.data_ptr(), None if bias is None else bias.data_ptr(), int(accumulate),
                None if next_product is None else next_product._segs_ptr, 0 if next_product is None else next_product._nseg)
        f = native.library().cg_linear_ex

        def call():
            if f(*args):
                raise RuntimeError("native product failed")
            return keep[1]

        if next_product is not None:
            weakref.finalize(call, native.library().cg_stop_warming)
        return call


class NativeLinear(nn.Module):
    """A (fused) projection on the native kernels: float32 in, float32 out."""

    def __init__(self, tensors: list[TensorInfo], bias: torch.Tensor | None = None,
                 row_orders: list[torch.Tensor | None] | None = None):
        super().__init__()
        self.product = NativeProduct(tensors, row_orders)
        self.in_features, self.out_features = self.product.in_features, self.product.out_features
        self.compute_dtype = torch.float32
        self.register_buffer("bias", None if bias is None else bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, _ = self.kernel()
        return f(x.reshape(-1, self.in_features)).reshape(*x.shape[:-1], self.out_features)

    def kernel(self, with_bias: bool = True):
        """(f, input dtype) as the other linear forms (decode.py calls f directly)."""
        product, bias = self.product, (self.bias if with_bias else None)
        if bias is None:
            return product, torch.float32
        return (lambda x: product(x).add_(bias)), torch.float32


class NativeRows(QuantRows):
    """An embedding table and/or output head on the file's own blocks: lookups dequantize the
    rows asked for (as QuantRows), and as a head the native kernels rank the whole vocabulary
    (no int8 copy, no ranker to pack), then QuantRows.forward recomputes the best REFINE logits
    of each position exactly from the dequantized rows, as for its int8 ranker: what sampling
    decides between and what dominates the log-softmax carries no activation rounding.
    Measured on the real files (teacher-forced against llama.cpp, mean |delta logp| of its top
    5): without the refinement Gemma 3 270M gave 0.153 and Qwen2.5-0.5B 96.9% top-1."""

    def __init__(self, path, table: TensorInfo):
        super().__init__(path, table)
        self.product = NativeProduct([table])
        # The whole table is read for every token: giving its pages back after lookups (as
        # QuantRows does for a table only read by rows) would only fault them in again.
        self._file_pages = None

    def _rank(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(x)

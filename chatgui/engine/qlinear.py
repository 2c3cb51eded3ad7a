"""Linear layers that keep GGUF weights compact in memory (issue: decode speed on CPU).

A decode step on a small model is bound by memory bandwidth, so the bytes read per token decide
the speed. On the CPU, 4-bit GGUF blocks (Q4_0, Q4_1) map exactly onto torch's int4 packed
format (groups of 32 with a scale and a zero, `(q - 8) * scale + zero`), so they are repacked
without any extra rounding of the weights and multiplied by `_weight_int4pack_mm_for_cpu`.
Other types become dense bfloat16 (or float32 when exact reference numerics are asked for).
"""
from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .quant import block_scale, blocks, nibbles
from .sampling import top_indices

GROUP = 32
INT4_TYPES = ("Q4_0", "Q4_1", "Q4_K")

# int8_ranker makes a quantized tensor on purpose (see there); torch warns that making them is
# deprecated. Filtered here, once, rather than with warnings.catch_warnings on the loading
# thread: that swaps the process's filters from another thread and can lose or keep filters.
warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel and other quantized",
                        category=UserWarning)


def int4_kernels_available() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and \
        hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu")


def int4_parts(t: TensorInfo) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q [N, K] int32 in 0..15, scale [N, K/32], zero [N, K/32]) with w = (q - 8) * scale + zero,
    exactly the values the GGUF block format encodes."""
    if t.qtype_name == "Q4_K":
        return _q4_k_parts(t)
    n, k = t.shape
    block_bytes = 18 if t.qtype_name == "Q4_0" else 20
    b = blocks(t, block_bytes)
    d = block_scale(b, 0).reshape(n, k // GROUP)
    q = nibbles(b[:, block_bytes - 16:]).reshape(n, k).to(torch.int32)
    if t.qtype_name == "Q4_0":          # w = d * (q - 8)
        zero = torch.zeros_like(d)
    else:                               # Q4_1: w = d * q + m = (q - 8) * d + (m + 8d)
        zero = block_scale(b, 2).reshape(n, k // GROUP) + 8 * d
    return q, d, zero


def _q4_k_parts(t: TensorInfo):
    """Q4_K: super-blocks of 256 = 8 sub-blocks of 32, each w = d*sc*q - dmin*m with 6-bit sc, m.
    Each sub-block is one int4 group: scale = d*sc, zero = 8*d*sc - dmin*m."""
    n, k = t.shape
    b = blocks(t, 144)
    d = block_scale(b, 0).reshape(n, k // 256, 1)
    dmin = block_scale(b, 2).reshape(n, k // 256, 1)
    raw = b.reshape(n, k // 256, 144).to(torch.int32)
    s = raw[..., 4:16]
    lo = torch.cat([s[..., 0:4] & 63, (s[..., 8:12] & 0x0F) | ((s[..., 0:4] >> 6) << 4)], dim=-1)
    mins = torch.cat([s[..., 4:8] & 63, (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)], dim=-1)
    qs = raw[..., 16:].reshape(n, k // 256, 4, 32)
    # Each 32-byte chunk holds sub-block 2j in its low nibbles and 2j+1 in its high nibbles.
    q = torch.stack([qs & 0x0F, qs >> 4], dim=3).reshape(n, k)
    scale = (d * lo.float()).reshape(n, k // GROUP)
    zero = (8 * d * lo.float() - dmin * mins.float()).reshape(n, k // GROUP)
    return q, scale, zero


class Int4Linear(nn.Module):
    N_MULTIPLE = 16      # the packed CPU kernel wants a multiple of 16 output rows

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bias: torch.Tensor | None,
                 compute_dtype=torch.bfloat16):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.compute_dtype = compute_dtype
        pad = -self.out_features % self.N_MULTIPLE
        if pad:     # zero rows, sliced off the result
            q = torch.cat([q, torch.zeros(pad, q.shape[1], dtype=q.dtype)])
            scale = torch.cat([scale, torch.zeros(pad, scale.shape[1], dtype=scale.dtype)])
            zero = torch.cat([zero, torch.zeros(pad, zero.shape[1], dtype=zero.dtype)])
        self.padded = bool(pad)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), 2))
        sz = torch.stack([scale.t(), zero.t()], dim=-1).contiguous()        # [K/32, N, 2]
        self.register_buffer("scales_zeros", sz.to(compute_dtype))
        self.register_buffer("bias", None if bias is None else bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The result stays in the compute dtype: the residual add promotes it to float32 for free.
        f, dtype = self.kernel()
        return f(x.reshape(-1, self.in_features).to(dtype)).reshape(*x.shape[:-1], self.out_features)

    def kernel(self, with_bias: bool = True):
        """(f, input dtype): f(x [M, in] in that dtype) -> [M, out], with no module overhead (decode.py).
        with_bias=False leaves the bias (self.bias) to the caller."""
        # torch's own binding of the op where it has one: ~5 us a call less than torch.ops' Python dispatch
        mm = getattr(torch, "_weight_int4pack_mm_for_cpu", None) or torch.ops.aten._weight_int4pack_mm_for_cpu
        packed, sz, n = self.packed, self.scales_zeros, self.out_features
        bias = self.bias if with_bias else None
        if not self.padded and bias is None:
            return (lambda x: mm(x, packed, GROUP, sz)), self.compute_dtype

        def run(x):
            y = mm(x, packed, GROUP, sz)[:, :n]
            return y if bias is None else y + bias
        return run, self.compute_dtype


class DenseLinear(nn.Module):
    """A plain weight in a chosen dtype; inputs are cast to it and results cast back."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype=torch.float32):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight.to(dtype))
        self.register_buffer("bias", None if bias is None else bias.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, dtype = self.kernel()
        return f(x.to(dtype))

    def kernel(self, with_bias: bool = True):
        weight, bias = self.weight, (self.bias if with_bias else None)
        if bias is None:
            return (lambda x: F.linear(x, weight)), weight.dtype
        return (lambda x: F.linear(x, weight) + bias), weight.dtype


def int4_groupwise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit quantization in groups of 32, as (q, scale, zero) for Int4Linear."""
    n, k = weight.shape
    g = weight.reshape(n, k // GROUP, GROUP)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    scale = ((hi - lo) / 15).clamp(min=1e-12)
    q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(n, k)
    return q, scale, lo + 8 * scale


def int8_ranker(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """f(x [M, in] float32) -> approximately x @ weight.T [M, out] float32, by FBGEMM's int8
    matmul (int8 weights with a scale per row; x quantized on the fly to 7 bits with one scale,
    so that the integer dot products cannot saturate), or None where this torch build has no
    FBGEMM (ARM)."""
    # On the output head of the default model it is ~2x faster than the int4 kernel (integer dot
    # products instead of dequantizing every weight) and ~2x closer to the exact logits. Quantized
    # tensors are deprecated in torch in favour of torchao; the op is still there, and where it
    # stops working QuantRows falls back to the int4 ranker.
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return None
    try:
        n, k = weight.shape
        scale = (weight.abs().amax(dim=1).double() / 127).clamp(min=1e-12)
        qw = torch.quantize_per_channel(weight.float(), scale, torch.zeros(n, dtype=torch.long), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qw, None)
        op = torch.ops.quantized.linear_dynamic
        op(torch.zeros(1, k), packed, True)
    except Exception:       # deprecated API gone or changed, or no memory for it: the int4 ranker serves
        return None
    return lambda x: op(x, packed, True)


def _build_ranker(weight: torch.Tensor):
    return int8_ranker(weight) or Int4Linear(*int4_groupwise(weight), None)


def _in_background(fn, *args) -> Future:
    pool = ThreadPoolExecutor(1, thread_name_prefix="chatgui-load")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)      # the thread ends when fn returns


class QuantRows(nn.Module):
    """Embedding table and output head, kept compact (issue: decode speed).

    The head is the largest matmul of a small model (49k x 576 here). An 8-bit copy of it
    (int8_ranker; a 4-bit one where that is missing) only ranks the vocabulary; the REFINE best
    candidates of each position are then recomputed exactly from block-wise int8 (Q8_0's own
    format, which holds a Q8_0 file's values exactly). What decides sampling and dominates the
    log-softmax is therefore exact; only far-down logits carry the ranker's error. Embedding rows
    are read from the exact int8 blocks.
    """

    REFINE = 64

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        v, k = weight.shape
        groups = weight.reshape(v, k // GROUP, GROUP)
        d = groups.abs().amax(dim=-1) / 127.0
        self.register_buffer("block_q", torch.round(groups / d.clamp(min=1e-30)[..., None]).to(torch.int8))
        self.register_buffer("block_d", d)
        # Packing the ranker takes ~0.5 s of mostly GIL-free work: it runs on another core while
        # the loader reads the layers, and finish_loading() (the loader's last step) waits for it.
        self.ranker = None
        self._ranker_job: Future | None = _in_background(_build_ranker, weight)

    def finish_loading(self):
        if self._ranker_job is not None:
            self.ranker, self._ranker_job = self._ranker_job.result(), None

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        shape = ids.shape
        ids = ids.reshape(-1)
        w = self.block_q[ids].float() * self.block_d[ids][..., None]
        return w.reshape(*shape, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).float()
        self.finish_loading()
        approx = self.ranker(x2).float()      # float() is free where it already is
        top = top_indices(approx, self.REFINE)                                             # [M, R]
        exact = torch.bmm(self.rows(top), x2.unsqueeze(-1)).squeeze(-1)                  # [M, R]
        approx.scatter_(1, top, exact)
        return approx.reshape(*shape[:-1], self.out_features)


class DenseRows(nn.Module):
    """Embedding table and output head as one dense matrix."""

    def __init__(self, weight: torch.Tensor, dtype=torch.float32):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight.to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight).float()

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids].float()


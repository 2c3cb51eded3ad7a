"""Linear layers that keep GGUF weights compact in memory (issue 13: real models at llama.cpp speed).

A decode step is bound by memory bandwidth, so the bytes read per token decide the speed. Every
quantized GGUF type stays quantized, in one of two torch kernels' formats:

| GGUF type                  | kept as                                  | exact?                          |
|----------------------------|------------------------------------------|---------------------------------|
| Q4_0, Q4_1, Q4_K           | int4, groups of 32 (`_weight_int4pack_mm`)| weights exact; the float16 block scales are held in bfloat16 (as before) |
| Q5_0, Q5_1, Q5_K, Q6_K, Q8_0 | CPU with FBGEMM: float16 in FBGEMM's packed fp16 GEMM (float32 activations) | almost: each weight rounded to float16 (11 significant bits, far finer than its 5-8-bit step) |
|                            | elsewhere: int8, one scale per row (`_weight_int8pack_mm`) | re-rounded: the row's largest weight / 127 is the step |
| Q2_K, Q3_K, IQ4_NL, IQ4_XS | int4, groups of 32                       | re-rounded (min/max per group)  |
| F32, F16, BF16             | dense bfloat16                           | -                               |

Why float16 for the 5-8-bit types on the CPU: on this AVX2 machine FBGEMM's fp16 GEMV streams its
weights about twice as fast per weight as `_weight_int8pack_mm` or the int4 kernel (which are
compute-bound: measured with benchmarks/bench_interleaved.py and a layer-stack timing, see the
commit), and it needs no activation quantization. It costs one byte more per weight than int8.
Packing takes ~6 ns a weight, so it runs on a background thread after load (Fp16Linear.pack);
the first forward pass waits for it (Transformer.finish_loading), so results never depend on
timing.

Q6_K cannot map exactly onto either kernel (its scales cover 16 weights; torch's int4 groups are
at least 32 wide and its int8 kernel has one scale per row); Q5_x would need a fifth bit. What
re-rounding costs in parity is measured on the real files (benchmarks/bench_models.py --parity).
Any other type (or a device without these kernels) gets a warning naming it and dense weights.
Projections that are fused (q, k, v; gate, up) share one form: int4 when every part can be int4,
else int8.
"""
from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .quant import blocks, block_scale, nibbles, q4_k_parts

GROUP = 32
INT4_EXACT = ("Q4_0", "Q4_1", "Q4_K")
INT4_REROUNDED = ("Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS")
INT8_REROUNDED = ("Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0")
DENSE_TYPES = ("F32", "F16", "BF16")       # not quantized in the file: dense by design
INT4_TYPES = INT4_EXACT                    # (older name)
FP16_ON_CPU = True                         # the 5-8-bit types as float16 in FBGEMM (see above)


def int4_kernels_available() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and \
        hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu")


@functools.lru_cache(maxsize=None)
def int8_kernel_works(device_type: str, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether torch has `_weight_int8pack_mm` for this device and activation dtype."""
    try:
        x = torch.ones(1, 32, dtype=dtype, device=device_type)
        w = torch.ones(16, 32, dtype=torch.int8, device=device_type)
        s = torch.ones(16, dtype=dtype, device=device_type)
        return bool(torch._weight_int8pack_mm(x, w, s)[0, 0] == 32)
    except Exception:
        return False


@functools.lru_cache(maxsize=None)
def fp16_gemm_works() -> bool:
    """Whether this torch build has FBGEMM's fp16 GEMM (x86 CPU builds; not ARM)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return False
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(torch.ones(16, 32), None)
        return bool(torch.ops.quantized.linear_dynamic_fp16(torch.ones(1, 32), packed)[0, 0] == 32)
    except Exception:
        return False


def linear_form(qtypes, in_features: int, device: torch.device, dtype: torch.dtype) -> str:
    """"int4", "int8" or "dense" for a (fused) projection whose parts have these GGUF types.
    Warns, naming the types, when a quantized part has to become dense."""
    qtypes = set(qtypes)
    quantized = qtypes - set(DENSE_TYPES)
    if not quantized:
        return "dense"
    int4_ok = device.type == "cpu" and int4_kernels_available() and in_features % GROUP == 0
    int8_ok = in_features % GROUP == 0 and int8_kernel_works(device.type, dtype)
    if int4_ok and qtypes <= set(INT4_EXACT + INT4_REROUNDED):
        return "int4"
    if qtypes <= set(INT4_EXACT + INT4_REROUNDED + INT8_REROUNDED):
        if device.type == "cpu" and FP16_ON_CPU and fp16_gemm_works():
            return "fp16"
        if int8_ok:
            return "int8"
    unknown = sorted(quantized - set(INT4_EXACT + INT4_REROUNDED + INT8_REROUNDED))
    why = (f"tensor type {', '.join(unknown)} has no compact form in this engine" if unknown else
           f"this device ({device.type}) has no compact kernel for {', '.join(sorted(quantized))}")
    warnings.warn(f"{why}: using dense weights (more memory, slower)", RuntimeWarning, stacklevel=2)
    return "dense"


def int4_parts(t: TensorInfo) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q [N, K] int32 in 0..15, scale [N, K/32], zero [N, K/32]) with w = (q - 8) * scale + zero,
    exactly the values the GGUF block format encodes (Q4_0, Q4_1, Q4_K)."""
    n, k = t.shape
    if t.qtype_name == "Q4_K":
        q, scale, zero = q4_k_parts(blocks(t, 144))
        return q.reshape(n, k), scale.reshape(n, k // GROUP), zero.reshape(n, k // GROUP)
    block_bytes = 18 if t.qtype_name == "Q4_0" else 20
    b = blocks(t, block_bytes)
    d = block_scale(b, 0).reshape(n, k // GROUP)
    q = nibbles(b[:, block_bytes - 16:]).reshape(n, k).to(torch.int32)
    if t.qtype_name == "Q4_0":          # w = d * (q - 8)
        zero = torch.zeros_like(d)
    else:                               # Q4_1: w = d * q + m = (q - 8) * d + (m + 8d)
        zero = block_scale(b, 2).reshape(n, k // GROUP) + 8 * d
    return q, d, zero


def int4_groupwise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit quantization in groups of 32, as (q, scale, zero) for Int4Linear."""
    n, k = weight.shape
    g = weight.reshape(n, k // GROUP, GROUP)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    scale = ((hi - lo) / 15).clamp(min=1e-12)
    q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(n, k)
    return q, scale, lo + 8 * scale


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one float32 scale per row: (q [N, K] int8, scale [N])."""
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-30)
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def pack_int4(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, dtype=torch.bfloat16):
    """(packed, scales_zeros) for the CPU int4 kernel; rows padded to a multiple of 16 with zeros
    (the kernel wants that; Int4Linear slices them off)."""
    pad = -q.shape[0] % Int4Linear.N_MULTIPLE
    if pad:
        q = torch.cat([q, torch.zeros(pad, q.shape[1], dtype=q.dtype)])
        scale = torch.cat([scale, torch.zeros(pad, scale.shape[1], dtype=scale.dtype)])
        zero = torch.cat([zero, torch.zeros(pad, zero.shape[1], dtype=zero.dtype)])
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), 2)
    return packed, torch.stack([scale.t(), zero.t()], dim=-1).contiguous().to(dtype)       # [K/32, N, 2]


class Int4Linear(nn.Module):
    N_MULTIPLE = 16      # the packed CPU kernel wants a multiple of 16 output rows

    def __init__(self, packed: torch.Tensor, scales_zeros: torch.Tensor, bias: torch.Tensor | None,
                 out_features: int):
        super().__init__()
        self.out_features, self.in_features = out_features, scales_zeros.shape[0] * GROUP
        self.compute_dtype = scales_zeros.dtype
        self.padded = packed.shape[0] != out_features
        self.register_buffer("packed", packed)
        self.register_buffer("scales_zeros", scales_zeros)
        self.register_buffer("bias", None if bias is None else bias.float())

    @classmethod
    def from_parts(cls, q, scale, zero, bias=None, compute_dtype=torch.bfloat16) -> "Int4Linear":
        return cls(*pack_int4(q, scale, zero, compute_dtype), bias, q.shape[0])

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


class Int8Linear(nn.Module):
    """int8 weights with one scale per output row, multiplied by `_weight_int8pack_mm`."""

    def __init__(self, weight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None,
                 compute_dtype=torch.bfloat16):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.compute_dtype = compute_dtype
        self.register_buffer("weight", weight)
        self.register_buffer("scales", scales.to(compute_dtype))
        self.register_buffer("bias", None if bias is None else bias.float())

    forward = Int4Linear.forward

    def kernel(self, with_bias: bool = True):
        mm = torch._weight_int8pack_mm
        weight, scales = self.weight, self.scales
        bias = self.bias if with_bias else None
        if bias is None:
            return (lambda x: mm(x, weight, scales)), self.compute_dtype
        return (lambda x: mm(x, weight, scales) + bias), self.compute_dtype


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


def fp16_parts(weight: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(float16 weight, exponent e) with weight ~= w16 * 2**e: a power of two (exact) keeps
    unusually small or large tensors in float16's normal range. e is 0 for ordinary weights."""
    top = float(weight.abs().max()) if weight.numel() else 1.0
    e = 0
    if top > 0 and not (2.0 ** -6 <= top <= 2.0 ** 12):
        e = int(torch.tensor(top).log2().floor()) - 4     # scaled largest weight in [16, 32)
    return (weight * 2.0 ** -e).to(torch.float16), e


class Fp16Linear(nn.Module):
    """float16 weights in FBGEMM's packed fp16 GEMM, float32 activations and results.

    Packing is separate (pack(), run on a background thread by the loader); the weight16 buffer
    is dropped once packed. Until then the module cannot run (Transformer.finish_loading waits)."""

    def __init__(self, weight16: torch.Tensor, exponent: int, bias: torch.Tensor | None, release=None):
        super().__init__()
        self.out_features, self.in_features = weight16.shape
        self.compute_dtype = torch.float32
        self.scale = 2.0 ** exponent
        self.register_buffer("weight16", weight16)
        self.register_buffer("bias", None if bias is None else bias.float())
        self.packed = None
        self._release = release        # called with weight16 once packed (drops mapped pages)

    def pack(self, scratch: torch.Tensor | None = None):
        """scratch: a float32 buffer of at least out * in elements to convert the weights in
        (reused from layer to layer: a fresh float32 copy per layer leaves the allocator's heap
        fragmented, ~2 bytes a weight of resident memory that is never given back)."""
        if self.packed is None:
            w = self.weight16
            n = w.numel()
            wf = w.float() if scratch is None or scratch.numel() < n else scratch[:n].view(w.shape).copy_(w)
            self.packed = torch.ops.quantized.linear_prepack_fp16(wf, None)
            self.weight16 = None
            if self._release is not None:
                self._release(w)

    forward = Int4Linear.forward

    def kernel(self, with_bias: bool = True):
        if self.packed is None:
            raise RuntimeError("Fp16Linear used before it was packed")
        op, packed, scale = torch.ops.quantized.linear_dynamic_fp16, self.packed, self.scale
        bias = self.bias if with_bias else None
        if scale == 1.0 and bias is None:
            return (lambda x: op(x, packed)), torch.float32
        if bias is None:
            return (lambda x: op(x, packed).mul_(scale)), torch.float32
        if scale == 1.0:
            return (lambda x: op(x, packed).add_(bias)), torch.float32
        return (lambda x: op(x, packed).mul_(scale).add_(bias)), torch.float32

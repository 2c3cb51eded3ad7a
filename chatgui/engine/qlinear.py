"""Linear layers that keep GGUF weights compact in memory (issue 13: real models at llama.cpp speed).

A decode step is bound by memory bandwidth, so the bytes read per token decide the speed. Every
quantized GGUF type stays quantized. On an x86 CPU the large projections (>= INT8_GEMM_MIN
weights: a 0.5-1.5B model's attention and MLP) of every type below are int8, one scale per row,
in FBGEMM's int8 GEMM with activations given exactly (Int8GemmLinear): re-rounded, 1 byte a
weight, read at memory speed. The MLP's down projection only where its rows are 4-bit and it is
large (>= INT8_GEMM_MIN_LONG: the 1.5B's Q4_K half; see uses_int8_gemm), and then its rows keep
their largest weights, one in a thousand, exact (int8_rows_outliers). A 4-bit down projection
with such long rows that is smaller is float16 instead (uses_fp16_for_int4). The rest keep these
forms:

| GGUF type                  | kept as                                  | exact?                          |
|----------------------------|------------------------------------------|---------------------------------|
| Q4_0, Q4_1, Q4_K           | int4, groups of 32 (`_weight_int4pack_mm`)| weights exact; the float16 block scales are held in bfloat16 |
| Q5_0, Q5_1, Q5_K, Q6_K, Q8_0 | CPU with FBGEMM: float16 in FBGEMM's packed fp16 GEMM (float32 activations) | almost: each weight rounded to float16 (11 significant bits, far finer than its 5-8-bit step) |
|                            | elsewhere: int8, one scale per row (`_weight_int8pack_mm`) | re-rounded: the row's largest weight / 127 is the step |
| Q2_K, Q3_K, IQ4_NL, IQ4_XS | int4, groups of 32                       | re-rounded (min/max per group)  |
| F32, F16, BF16             | dense bfloat16                           | -                               |

Why float16 for the 5-8-bit types on the CPU: on this AVX2 machine FBGEMM's fp16 GEMV streams its
weights about twice as fast per weight as `_weight_int8pack_mm` or the int4 kernel (which are
compute-bound: measured with benchmarks/bench_interleaved.py and a layer-stack timing, see the
commit), and it needs no activation quantization. It costs one byte more per weight than int8.
Packing takes ~6 ns a weight, so it runs on background threads after load (Fp16Linear.pack,
Int8GemmLinear.pack). A forward pass waits for the float16 forms; the int8 GEMM's weights
answer meanwhile through an interim kernel (`_weight_int8pack_mm`, bfloat16 activations). So
until packing is done (seconds after load; Transformer.finish_loading waits for it) results can
differ in the last bits from later ones, and a seeded reply asked in that window may not be
reproduced exactly.

Q6_K cannot map exactly onto either kernel (its scales cover 16 weights; torch's int4 groups are
at least 32 wide and its int8 kernel has one scale per row); Q5_x would need a fifth bit. What
re-rounding costs in parity is measured on the real files (benchmarks/bench_models.py --parity).
Any other type (or a device without these kernels) gets a warning naming it and dense weights.
Projections that are fused (q, k, v; gate, up) share one form: int4 when every part can be int4,
else int8.
"""
from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .quant import blocks, block_scale, dequantize_row_chunks, nibbles, q4_k_parts

GROUP = 32
INT4_EXACT = ("Q4_0", "Q4_1", "Q4_K")
INT4_REROUNDED = ("Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS")
INT8_REROUNDED = ("Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0")
DENSE_TYPES = ("F32", "F16", "BF16")       # not quantized in the file: dense by design
FP16_ON_CPU = True                         # the 5-8-bit types as float16 in FBGEMM (see above)
INT8_GEMM_ON_CPU = True                    # large projections of every type in FBGEMM's int8 GEMM
# Smaller projections keep the forms above: below ~2M weights the int8 GEMM's fixed cost (a
# dozen small ops for its exact input, ~40 us) outweighs what it saves; and with rows shorter
# than INT8_GEMM_MIN_ROW it is no faster (prefill, which pays for its two rows per token, is
# slower). Figures: benchmarks/results/2026-12-07-figures-from-docstrings.md.
INT8_GEMM_MIN = 2_000_000
INT8_GEMM_MIN_ROW = 768
INT8_GEMM_MIN_LONG = 8_000_000     # the same for a down projection with long rows (see uses_int8_gemm)
# A down projection's rows at least this long keep their largest weights exactly
# (int8_rows_outliers), one in OUTLIER_EVERY of the row.
OUTLIER_MIN_ROW = 4096
OUTLIER_EVERY = 1024
FP16_FOR_INT4_MAX = 5_000_000      # the largest 4-bit down projection made float16 (uses_fp16_for_int4)


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


@functools.lru_cache(maxsize=None)
def int8_gemm_works() -> bool:
    """Whether this torch build has FBGEMM's int8 GEMM with per-row weight scales (x86 CPU)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return False
    try:
        mod = Int8GemmLinear(torch.ones(16, 32, dtype=torch.int8), torch.full((16,), 0.5), None)
        mod.pack()
        return bool(abs(float(mod(torch.full((1, 32), 0.25))[0, 0]) - 4.0) < 1e-3)
    except Exception:
        return False


def uses_int8_gemm(qtypes, in_features: int, out_features: int, device_type: str, down: bool = False) -> bool:
    """Whether a projection of these GGUF types and shape goes to Int8GemmLinear (large enough,
    long enough rows, a known quantized type, an x86 CPU with FBGEMM)."""
    # A down projection (down=True) with rows of OUTLIER_MIN_ROW or more only from 4-bit types, whose int4
    # kernel is compute-bound (int8 is much faster there), and only in large matrices; the 5-8-bit
    # ones keep float16, exact, near memory speed: re-rounding them too cost parity with
    # llama.cpp for no more speed, and small matrices gained too little for the parity they
    # cost (figures: benchmarks/results/2026-12-07-figures-from-docstrings.md).
    long_rows = down and in_features >= OUTLIER_MIN_ROW
    types = set(INT4_EXACT + INT4_REROUNDED) if long_rows else set(INT4_EXACT + INT4_REROUNDED + INT8_REROUNDED)
    smallest = INT8_GEMM_MIN_LONG if long_rows else INT8_GEMM_MIN
    return (device_type == "cpu" and INT8_GEMM_ON_CPU and in_features * out_features >= smallest
            and in_features >= INT8_GEMM_MIN_ROW and set(qtypes) <= types and int8_gemm_works())


def uses_fp16_for_int4(qtypes, in_features: int, out_features: int, device_type: str, down: bool = False) -> bool:
    """Whether a 4-bit down projection with long rows (OUTLIER_MIN_ROW or more), too small for the
    int8 GEMM and at most FP16_FOR_INT4_MAX weights, is float16 in FBGEMM's fp16 GEMM rather than
    int4. The int4 kernel is slowest on such rows, and float16 holds the weights to its own
    rounding (11 significant bits): a faster decode for some more memory, still within the
    target of 1.5x llama.cpp's (figures: benchmarks/results/2026-12-07-figures-from-docstrings.md).
    Larger ones are int8 (uses_int8_gemm) or, unmeasured between the two sizes, stay int4;
    shorter rows stay int4."""
    return (device_type == "cpu" and FP16_ON_CPU and down and in_features >= OUTLIER_MIN_ROW
            and in_features * out_features <= FP16_FOR_INT4_MAX
            and set(qtypes) <= set(INT4_EXACT + INT4_REROUNDED)
            and not uses_int8_gemm(qtypes, in_features, out_features, device_type, down) and fp16_gemm_works())


def linear_form(qtypes, in_features: int, device: torch.device, dtype: torch.dtype, out_features: int = 0,
                down: bool = False) -> str:
    """"int8gemm", "int4", "fp16", "int8" or "dense" for a (fused) projection whose parts have
    these GGUF types (down: the MLP's down projection). Warns, naming the types, when a quantized
    part has to become dense."""
    qtypes = set(qtypes)
    quantized = qtypes - set(DENSE_TYPES)
    if not quantized:
        return "dense"
    if uses_int8_gemm(qtypes, in_features, out_features, device.type, down):
        return "int8gemm"
    int4_ok = device.type == "cpu" and int4_kernels_available() and in_features % GROUP == 0
    int8_ok = in_features % GROUP == 0 and int8_kernel_works(device.type, dtype)
    if int4_ok and qtypes <= set(INT4_EXACT + INT4_REROUNDED) and \
            not uses_fp16_for_int4(qtypes, in_features, out_features, device.type, down):
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


def int8_rows(weight: torch.Tensor, in_place: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one float32 scale per row: (q [N, K] int8, scale [N]). in_place: the
    weight's own memory holds the rounded steps on the way (it is left as q, in float32)."""
    scale = _row_scales(weight)
    return _int8_steps(weight, scale, in_place).to(torch.int8), scale


def _row_scales(weight: torch.Tensor) -> torch.Tensor:
    """Each row's largest |w| / 127 (at least 1e-30), without an |w| copy of the weight."""
    return (torch.maximum(weight.amax(dim=1), weight.amin(dim=1).neg_()) / 127).clamp_(min=1e-30)


def _int8_steps(weight: torch.Tensor, scale: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """round(weight / scale per row), clamped to -127..127, in float32. Multiplies by the
    reciprocal: torch's broadcast division runs ~30x slower than a multiplication, and
    converting is most of a first load. So a step can differ
    from the quotient's at an exact tie (about one weight in 10^5, by one)."""
    inv = (1 / scale)[:, None]
    return (weight.mul_(inv) if in_place else weight * inv).round_().clamp_(-127, 127)


def outliers_per_row(in_features: int, down: bool) -> int:
    """How many of each row's largest weights an int8 down projection keeps exact (0: none)."""
    return in_features // OUTLIER_EVERY if down and in_features >= OUTLIER_MIN_ROW else 0


def int8_rows_outliers(weight: torch.Tensor, k: int, in_place: bool = False) -> tuple[torch.Tensor, ...]:
    """int8 rows whose step is set by each row's (k+1)-th largest |w|, not its largest, with the k
    largest corrected exactly: (q [N, K] int8, scale [N], cols [N, k] int32 (ascending), vals [N, k]
    float32), w = q * scale + the sparse (cols, vals). in_place: as for int8_rows.

    Why: in a long row (the MLP's down projection: 4-9k weights) a single large weight sets a step
    several times coarser than the rest of the row needs. Per-row int8 of Qwen2.5-1.5B's down
    projections moved mean |delta logp| against llama.cpp from 0.127 to 0.142; with its few
    largest weights exact, 0.130-0.133."""
    top = weight.abs().topk(k + 1, dim=1)
    scale = (top.values[:, k] / 127).clamp(min=1e-30)
    cols = top.indices[:, :k].sort(dim=1).values
    exact = weight.gather(1, cols)
    qf = _int8_steps(weight, scale, in_place)
    vals = exact - qf.gather(1, cols) * scale[:, None]
    return qf.to(torch.int8), scale, cols.to(torch.int32), vals


def int8_rows_of(path, t: TensorInfo, rows_per_chunk: int | None = None, outliers: int = 0) -> tuple[torch.Tensor, ...]:
    """int8_rows (outliers=0) or int8_rows_outliers of a GGUF tensor, dequantized a chunk of rows
    at a time into one reused buffer: a chunk of ~2M weights stays in the CPU's cache through the
    passes over it, no pass allocates fresh memory (page faults cost more than the arithmetic),
    and the tensor is never held in float32."""
    n, k = t.shape
    out = [torch.empty(n, k, dtype=torch.int8), torch.empty(n)]
    if outliers:
        out += [torch.empty(n, outliers, dtype=torch.int32), torch.empty(n, outliers)]
    for start, chunk in dequantize_row_chunks(path, t, rows_per_chunk or max(1, 2_000_000 // k), reuse=True):
        rows = slice(start, start + len(chunk))
        if outliers:
            for dst, part in zip(out, int8_rows_outliers(chunk, outliers, in_place=True)):
                dst[rows] = part
        else:
            scale = _row_scales(chunk)
            out[0][rows].copy_(_int8_steps(chunk, scale, in_place=True))     # float -> int8, exact integers
            out[1][rows] = scale
    return tuple(out)


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


def _fp16_exponent(top: float) -> int:
    """e for fp16_parts, from a tensor's largest |w|: 0 inside float16's comfortable range (and
    for a damaged tensor with NaN or infinite weights, whose values it keeps as they are)."""
    if math.isfinite(top) and top > 0 and not (2.0 ** -6 <= top <= 2.0 ** 12):
        return int(torch.tensor(top).log2().floor()) - 4     # scaled largest weight in [16, 32)
    return 0


def fp16_parts(weight: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(float16 weight, exponent e) with weight ~= w16 * 2**e: a power of two (exact) keeps
    unusually small or large tensors in float16's normal range. e is 0 for ordinary weights."""
    e = _fp16_exponent(float(weight.abs().max()) if weight.numel() else 1.0)
    return (weight * 2.0 ** -e if e else weight).to(torch.float16), e


def fp16_rows_of(path, t: TensorInfo, rows_per_chunk: int | None = None) -> torch.Tensor | None:
    """fp16_parts' float16 weight of a GGUF tensor of ordinary weights (exponent 0), converted a
    chunk of rows at a time into one reused buffer (as int8_rows_of); None for any other (an
    exponent, NaN or infinite weights): fp16_parts then converts the whole tensor."""
    n, k = t.shape
    out = torch.empty(n, k, dtype=torch.float16)
    top = 0.0
    for start, chunk in dequantize_row_chunks(path, t, rows_per_chunk or max(1, 2_000_000 // k), reuse=True):
        largest = float(torch.maximum(chunk.amax(), chunk.amin().neg_()))
        if not math.isfinite(largest):
            return None
        top = max(top, largest)
        out[start:start + len(chunk)].copy_(chunk)
    return out if _fp16_exponent(top) == 0 else None


def fbgemm_int8_pack(q: torch.Tensor, scale: torch.Tensor):
    """FBGEMM's packed form of int8 weights q [N, K] with one scale per row (for
    torch.ops.quantized.linear_dynamic). The quantized tensor it goes through is deprecated API
    (rows.py filters the warning), the one way to reach this kernel."""
    qw = torch._make_per_channel_quantized_tensor(q, scale.double(), torch.zeros(len(q), dtype=torch.long), 0)
    return torch.ops.quantized.linear_prepack(qw, None)


def _abs_max(x: torch.Tensor) -> torch.Tensor:
    """max |x| as a tensor, at least 1e-30 (aminmax: ~3 us on a decode row, against 8-33 us for
    vector_norm(x, inf))."""
    lo, hi = torch.aminmax(x)
    return torch.maximum(hi, lo.neg_()).clamp_(min=1e-30)


def _gemm(op, rows: torch.Tensor, packed) -> torch.Tensor:
    try:
        return op(rows, packed, True)
    except RuntimeError as e:       # FBGEMM cannot choose a scale for NaN or infinite values
        if not torch.isfinite(rows).all():
            raise FloatingPointError("the model's activations overflowed (NaN or infinite values): "
                                     "the file's weights may be damaged") from e
        raise


class Int8GemmLinear(nn.Module):
    """int8 weights (one scale per row) in FBGEMM's int8 GEMM, with activations given exactly.

    FBGEMM quantizes its input to 7 bits with one scale for the whole tensor, far too coarse for
    a transformer's activations (a few channels are 10-100x the rest: parity with llama.cpp
    fell visibly). So the input goes in as two rows on a grid we fix:
    x is scaled so that its largest |value| is 63, row one holds round(x') (integers, exact on
    the grid), row two holds R * (x' - round(x')), and two zero-weight columns at the end hold
    -64 and 63, which pins FBGEMM's grid to exactly the integers with zero point 64. Then
    y = (W row_one + W row_two / R) * amax / 63 carries the activations to ~1/240 of a step of
    the first row (about 15 bits): what remains is the weights' int8 rounding.

    Why: the int8 GEMM streams one byte per weight at memory bandwidth (both rows share one pass
    over the weights), several times faster than the int4 kernel on the large projections of a
    0.5-1.5B model and half the bytes of float16 (figures:
    benchmarks/results/2026-12-07-figures-from-docstrings.md).
    On small matrices the dozen small ops around it cost more than they save (INT8_GEMM_MIN).
    Packing is separate (pack(), on a background thread like Fp16Linear)."""
    PAD = 8                  # the anchor columns (zero weights), padded to 8
    R = 120.0                # |R * residual| <= 60 stays inside the grid's -64..63

    def __init__(self, weight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, release=None,
                 outliers: tuple[torch.Tensor, torch.Tensor] | None = None):
        """outliers: (cols, vals) of int8_rows_outliers, added to the result exactly."""
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.compute_dtype = torch.float32
        self.register_buffer("weight", weight)
        self.register_buffer("scales", scales.float())
        self.register_buffer("bias", None if bias is None else bias.float())
        # The outliers as flat (column, value) pairs, k per row: x[:, cols] * vals summed per row
        # (a gather, not a sparse matmul: CSR times a vector on the CPU needs an MKL build).
        self.outliers_per_row = 0 if outliers is None else outliers[0].shape[1]
        self.register_buffer("outlier_cols", None if not self.outliers_per_row else outliers[0].reshape(-1).long())
        self.register_buffer("outlier_vals", None if not self.outliers_per_row else outliers[1].reshape(-1).float())
        self.packed = None
        self._release = release
        self._row = self._rows_buffer(1)        # the decode step's input (one row), made once
        # Until packed, the same int8 weights serve through `_weight_int8pack_mm` (slower, no
        # packing): a model answers while it is packed in the background.
        self.interim = int8_kernel_works("cpu")
        self._scales16 = self.scales.to(torch.bfloat16)

    def _corrected(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """y (float32 [M, out]) plus the outliers' exact part of x @ W.T."""
        if not self.outliers_per_row:
            return y
        picked = torch.index_select(x.float(), 1, self.outlier_cols).mul_(self.outlier_vals)
        return y.add_(picked.view(len(x), self.out_features, self.outliers_per_row).sum(-1))

    def _rows_buffer(self, m: int) -> torch.Tensor:
        buf = torch.zeros(2 * m, self.in_features + self.PAD)
        buf[0, self.in_features], buf[0, self.in_features + 1] = -64.0, 63.0
        return buf

    def _many_rows(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        m, k = x.shape
        if m == 0:
            return x.new_zeros(0, self.out_features)
        buf = self._rows_buffer(m)
        whole, frac = buf[:m, :k], buf[m:, :k]
        amax = _abs_max(x)
        torch.mul(x, 63 / amax, out=frac)
        torch.round(frac, out=whole)
        frac.sub_(whole).mul_(self.R)
        y = _gemm(torch.ops.quantized.linear_dynamic, buf, self.packed)
        y = self._corrected(torch.add(y[:m], y[m:], alpha=1 / self.R).mul_(amax / 63), x)
        return y if bias is None else y.add_(bias)

    def pack(self, scratch: torch.Tensor | None = None):
        if self.packed is None:
            w = self.weight
            padded = torch.cat([w, torch.zeros(w.shape[0], self.PAD, dtype=torch.int8)], dim=1)
            self.packed = fbgemm_int8_pack(padded, self.scales)
            self.weight = None
            if self._release is not None:
                self._release(w)

    forward = Int4Linear.forward

    def kernel(self, with_bias: bool = True):
        bias = self.bias if with_bias else None
        # weight before packed: pack() on another thread sets packed, then drops weight; read in
        # this order, an unpacked module's weight is never seen as None.
        weight = self.weight
        if self.packed is None:
            if not self.interim:
                raise RuntimeError("Int8GemmLinear used before it was packed")
            scales = self._scales16
            if self.outliers_per_row:
                def interim(x):
                    y = self._corrected(torch._weight_int8pack_mm(x, weight, scales).float(), x)
                    return y if bias is None else y.add_(bias)
                return interim, torch.bfloat16
            if bias is None:
                return (lambda x: torch._weight_int8pack_mm(x, weight, scales)), torch.bfloat16
            return (lambda x: torch._weight_int8pack_mm(x, weight, scales) + bias), torch.bfloat16
        op, packed, k = torch.ops.quantized.linear_dynamic, self.packed, self.in_features
        row, frac = self._row, self._row[1:, :k]
        whole = row[:1, :k]
        c63, r = torch.tensor(63.0), torch.tensor(self.R)
        rows_to_y = torch.tensor([[1 / 63, 1 / (63 * self.R)]])   # times amax: y from the two rows

        corrected = self._corrected if self.outliers_per_row else None

        def run(x):
            # Each op here costs microseconds on a decode step: scalars are tensors made once,
            # and the two rows are combined by one tiny matmul.
            if x.shape[0] != 1:
                return self._many_rows(x, bias)
            amax = _abs_max(x)
            torch.mul(x, torch.div(c63, amax), out=frac)     # x' = x * 63 / amax, in [-63, 63]
            torch.round(frac, out=whole)
            frac.sub_(whole).mul_(r)
            y = torch.mm(torch.mul(rows_to_y, amax), _gemm(op, row, packed))
            if corrected is not None:
                corrected(y, x)
            return y if bias is None else y.add_(bias)
        return run, torch.float32


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

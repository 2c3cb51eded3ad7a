"""GGUF tensor data -> torch tensors.

The block formats the engine meets most (Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q6_K, Q8_0) are
dequantized with torch ops directly on the memory-mapped bytes (no copy of the file); every
other type `gguf.quants` understands goes through it. `dequantize_rows` reads only the rows asked
for: embedding lookups and the output head's exact refinement use it on the file's own blocks.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import ModelLoadError
from .gguf_file import TensorInfo

# Types gguf.quants can dequantize (checked at load time so an unknown one fails early).
SUPPORTED = {
    "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S",
    "IQ1_S", "IQ1_M", "MXFP4",
}


def raw_rows(t: TensorInfo) -> torch.Tensor:
    """The tensor's bytes as a [rows, row_bytes] uint8 tensor over the mapped file (no copy)."""
    raw = t.data.view(np.uint8).reshape(t.shape[0] if len(t.shape) > 1 else 1, -1)
    if not raw.flags.writeable:      # a read-only mapping: torch wants writable memory
        raw = raw.copy()
    return torch.from_numpy(raw)


def blocks(t: TensorInfo, block_bytes: int) -> torch.Tensor:
    """The tensor's raw blocks as a [n_blocks, block_bytes] uint8 tensor."""
    return raw_rows(t).reshape(-1, block_bytes)


def block_scale(b: torch.Tensor, start: int) -> torch.Tensor:
    """The float16 field at byte `start` of every block, as float32 [n_blocks, 1]."""
    return b[:, start:start + 2].contiguous().view(torch.float16).float()


def nibbles(qs: torch.Tensor) -> torch.Tensor:
    """4-bit values 0..15 of [n, w] packed bytes: ggml packs element i in the low nibble of
    byte i and element i+w in the high nibble (w = 16 in a Q4_0/Q4_1 block, 32 in each quarter
    of a Q4_K super-block)."""
    return torch.cat([qs & 0x0F, qs >> 4], dim=1)


# Each _dq_* writes the weights of [n_blocks, block_bytes] uint8 blocks into out, float32
# [n_blocks, block_elements], and returns it. Why out: converting is most of a first load, and a
# fresh float32 result per chunk cost more in page faults (~2 ms per 8 MB) than the arithmetic;
# the chunked converters (dequantize_row_chunks) reuse one buffer. The small integer values are
# built as uint8 and widened by one copy into out (a mixed uint8 * float op runs ~10x slower).
def _dq_q8_0(b, out):
    return out.copy_(b[:, 2:].contiguous().view(torch.int8)).mul_(block_scale(b, 0))


def _dq_q4_0(b, out):
    return out.copy_(nibbles(b[:, 2:])).sub_(8.0).mul_(block_scale(b, 0))


def _dq_q4_1(b, out):
    return out.copy_(nibbles(b[:, 4:])).mul_(block_scale(b, 0)).add_(block_scale(b, 2))


_BIT = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def _five_bit(b: torch.Tensor, qh_at: int) -> torch.Tensor:
    """5-bit values (uint8) of Q5_0/Q5_1 blocks: low nibbles as in Q4, the fifth bit from a 32-bit
    little-endian mask (bit j of byte i belongs to element 8i + j)."""
    high = ((b[:, qh_at:qh_at + 4, None] & _BIT) != 0).view(torch.uint8).reshape(-1, 32)   # [B, 32] 0/1
    return nibbles(b[:, qh_at + 4:]).bitwise_or_(high << 4)


def _dq_q5_0(b, out):
    return out.copy_(_five_bit(b, 2)).sub_(16.0).mul_(block_scale(b, 0))


def _dq_q5_1(b, out):
    return out.copy_(_five_bit(b, 4)).mul_(block_scale(b, 0)).add_(block_scale(b, 2))


def _q4_k_scales(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d*sc, dmin*m) [n, 8] of Q4_K super-blocks [n, 144]: their 6-bit scales and mins."""
    d, dmin = block_scale(b, 0), block_scale(b, 2)
    s = b[:, 4:16].to(torch.int32)
    lo = torch.cat([s[:, 0:4] & 63, (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)], dim=-1)
    mins = torch.cat([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], dim=-1)
    return d * lo.float(), dmin * mins.float()


def _q4_k_quants(b: torch.Tensor) -> torch.Tensor:
    """The 4-bit values [n, 8, 32] uint8 of Q4_K super-blocks: each 32-byte chunk holds sub-block
    2j in its low nibbles and 2j+1 in its high nibbles."""
    return nibbles(b[:, 16:].reshape(-1, 32)).view(-1, 8, 32)


def q4_k_parts(b: torch.Tensor):
    """Q4_K super-blocks [n, 144] -> (q [n, 256] int32 0..15, scale [n, 8], zero [n, 8]) with
    w = (q - 8) * scale + zero per sub-block of 32: each super-block is 8 sub-blocks, each
    w = d*sc*q - dmin*m with 6-bit sc, m, so scale = d*sc and zero = 8*d*sc - dmin*m."""
    scale, offset = _q4_k_scales(b)
    return _q4_k_quants(b).reshape(-1, 256).to(torch.int32), scale, 8 * scale - offset


def _dq_q4_k(b, out):
    # w = d*sc*q - dmin*m
    scale, offset = _q4_k_scales(b)
    out.view(-1, 8, 32).copy_(_q4_k_quants(b)).mul_(scale[..., None]).sub_(offset[..., None])
    return out


def _dq_q6_k(b, out):
    """Q6_K: 256 weights = 16 groups of 16 sharing an int8 scale, times the float16 d at byte
    208; each 6-bit value is a low nibble (ql, 128 bytes) and two high bits (qh, 64 bytes)."""
    n = b.shape[0]
    ql = b[:, :128].reshape(n, 2, 64)
    qh = b[:, 128:192].reshape(n, 2, 32)
    lo = torch.cat([ql & 0x0F, ql >> 4], dim=2).view(n, 2, 4, 32)        # per half: 4 runs of 32
    # (four scalar shifts: a shift by a broadcast tensor of amounts ran ~20x slower)
    hi = torch.stack([qh, qh >> 2, qh >> 4, qh >> 6], dim=2).bitwise_and_(3)
    sc = b[:, 192:208].contiguous().view(torch.int8).float()             # [n, 16]
    out.view(n, 16, 16).copy_(lo.bitwise_or_(hi << 4).view(n, 16, 16)).sub_(32.0) \
        .mul_((sc * block_scale(b, 208))[..., None])                     # as llama.cpp: (d * sc) * (q - 32)
    return out


_FAST = {"Q8_0": (34, 32, _dq_q8_0), "Q4_0": (18, 32, _dq_q4_0), "Q4_1": (20, 32, _dq_q4_1),
         "Q5_0": (22, 32, _dq_q5_0), "Q5_1": (24, 32, _dq_q5_1), "Q4_K": (144, 256, _dq_q4_k),
         "Q6_K": (210, 256, _dq_q6_k)}


def check_supported(path, t: TensorInfo) -> None:
    if t.qtype_name not in SUPPORTED:
        raise ModelLoadError(path, f"tensor {t.name!r} uses quantization type {t.qtype_name}, which is not supported")


def _dequantize_raw(path, t: TensorInfo, raw: torch.Tensor, rows: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """float32 [rows, cols] from [rows, row_bytes] raw bytes of tensor t; written into out (a 1-D
    float32 buffer of at least rows * cols elements) where given."""
    cols = t.shape[-1]
    dst = (torch.empty(rows * cols) if out is None else out[:rows * cols]).view(rows, cols)
    if t.qtype_name == "F32":
        return dst.copy_(raw.contiguous().view(torch.float32).reshape(rows, cols))
    if t.qtype_name == "F16":
        return dst.copy_(raw.contiguous().view(torch.float16).reshape(rows, cols))
    if t.qtype_name == "BF16":
        return dst.copy_(raw.contiguous().view(torch.bfloat16).reshape(rows, cols))
    fast = _FAST.get(t.qtype_name)
    if fast is not None:
        block_bytes, block_elements, fn = fast
        fn(raw.reshape(-1, block_bytes), dst.view(-1, block_elements))
        return dst
    import gguf

    try:
        arr = gguf.quants.dequantize(raw.numpy(), gguf.GGMLQuantizationType(t.qtype))
    except NotImplementedError:
        raise ModelLoadError(path, f"tensor {t.name!r}: quantization type {t.qtype_name} is not supported") from None
    return dst.copy_(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(rows, cols))


def dequantize(path, t: TensorInfo) -> torch.Tensor:
    """Float32 torch tensor of shape t.shape."""
    check_supported(path, t)
    raw = raw_rows(t)
    return _dequantize_raw(path, t, raw, raw.shape[0]).reshape(t.shape)


def dequantize_rows(path, t: TensorInfo, ids: torch.Tensor) -> torch.Tensor:
    """float32 [*ids.shape, cols]: the rows ids of a 2-D tensor, read from its own blocks."""
    flat = ids.reshape(-1)
    raw = raw_rows(t)[flat]
    return _dequantize_raw(path, t, raw, flat.numel()).reshape(*ids.shape, t.shape[-1])


def dequantize_row_chunks(path, t: TensorInfo, rows_per_chunk: int, reuse: bool = False):
    """(start, float32 [n, cols]) chunks of a 2-D tensor's rows: converting a large table
    (a 152k-row output head) never holds it all in float32 at once. reuse: every chunk is written
    into the same buffer (each is then valid only until the next is asked for)."""
    raw = raw_rows(t)
    buf = torch.empty(min(rows_per_chunk, raw.shape[0]) * t.shape[-1]) if reuse else None
    for start in range(0, raw.shape[0], rows_per_chunk):
        part = raw[start:start + rows_per_chunk]
        yield start, _dequantize_raw(path, t, part, part.shape[0], buf)

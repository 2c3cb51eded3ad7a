"""GGUF tensor data -> torch tensors.

The most common block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) are dequantized with torch ops directly on
the memory-mapped bytes; every other type `gguf.quants` understands goes through it. Nothing is
kept twice: the numpy result is handed to torch without a copy.
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


def blocks(t: TensorInfo, block_bytes: int) -> torch.Tensor:
    """The tensor's raw blocks as a [n_blocks, block_bytes] uint8 tensor."""
    raw = np.ascontiguousarray(t.data).reshape(-1, block_bytes)
    return torch.from_numpy(raw.copy() if not raw.flags.writeable else raw)


def block_scale(b: torch.Tensor, start: int) -> torch.Tensor:
    """The float16 field at byte `start` of every block, as float32 [n_blocks, 1]."""
    return b[:, start:start + 2].contiguous().view(torch.float16).float()


def _dequant_q8_0(t: TensorInfo) -> torch.Tensor:
    b = blocks(t, 34)
    q = b[:, 2:].contiguous().view(torch.int8).float()
    return q * block_scale(b, 0)


def nibbles(qs: torch.Tensor) -> torch.Tensor:
    """4-bit values 0..15 of [n_blocks, 16] packed bytes: ggml packs element i in the low
    nibble of byte i and element i+16 in the high nibble."""
    return torch.cat([qs & 0x0F, qs >> 4], dim=1)


def _unpack_nibbles(qs: torch.Tensor) -> torch.Tensor:
    return nibbles(qs).float()


def _dequant_q4_0(t: TensorInfo) -> torch.Tensor:
    b = blocks(t, 18)
    return (_unpack_nibbles(b[:, 2:]) - 8.0) * block_scale(b, 0)


def _dequant_q4_1(t: TensorInfo) -> torch.Tensor:
    b = blocks(t, 20)
    return _unpack_nibbles(b[:, 4:]) * block_scale(b, 0) + block_scale(b, 2)


_BIT = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def _five_bit(b: torch.Tensor, qh_at: int) -> torch.Tensor:
    """5-bit values of Q5_0/Q5_1 blocks: low nibbles as in Q4, the fifth bit from a 32-bit
    little-endian mask (bit j of byte i belongs to element 8i + j)."""
    bits = (b[:, qh_at:qh_at + 4, None] & _BIT) != 0                                # [B, 4, 8]
    return _unpack_nibbles(b[:, qh_at + 4:]) + 16.0 * bits.reshape(-1, 32)


def _dequant_q5_0(t: TensorInfo) -> torch.Tensor:
    b = blocks(t, 22)
    return (_five_bit(b, 2) - 16.0) * block_scale(b, 0)


def _dequant_q5_1(t: TensorInfo) -> torch.Tensor:
    b = blocks(t, 24)
    return _five_bit(b, 4) * block_scale(b, 0) + block_scale(b, 2)


_FAST = {"Q8_0": _dequant_q8_0, "Q4_0": _dequant_q4_0, "Q4_1": _dequant_q4_1, "Q5_0": _dequant_q5_0,
         "Q5_1": _dequant_q5_1}


def check_supported(path, t: TensorInfo) -> None:
    if t.qtype_name not in SUPPORTED:
        raise ModelLoadError(path, f"tensor {t.name!r} uses quantization type {t.qtype_name}, which is not supported")


def dequantize(path, t: TensorInfo) -> torch.Tensor:
    """Float32 torch tensor of shape t.shape."""
    check_supported(path, t)
    if t.qtype_name == "F32":
        return torch.from_numpy(np.array(t.data, dtype=np.float32))
    if t.qtype_name == "F16":
        return torch.from_numpy(np.array(t.data)).float()
    fast = _FAST.get(t.qtype_name)
    if fast is not None:
        return fast(t).reshape(t.shape)
    import gguf

    try:
        arr = gguf.quants.dequantize(np.asarray(t.data), gguf.GGMLQuantizationType(t.qtype))
    except NotImplementedError:
        raise ModelLoadError(path, f"tensor {t.name!r}: quantization type {t.qtype_name} is not supported") from None
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(t.shape)

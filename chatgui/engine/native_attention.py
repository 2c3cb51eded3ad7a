"""A decode step's attention on the native library (engine/native, cg_attend).

One new token's queries against every cached key and value: a matrix-vector product over the
cache, bound by how fast the cache is read. Torch's CPU attention (SDPA, or matmul + softmax)
takes ~1 ms a layer for Qwen2.5-1.5B's 2 x 6 query heads over 4,900 float32 positions, ~5 GB/s,
on one thread; the library splits the positions in chunks of 128 over its pool and reads them
at memory speed (benchmarks/results/2026-12-07-cores.md). Chunks are combined in their order,
so the result does not depend on the number of threads.
"""
from __future__ import annotations

import torch

from . import native

_DTYPES = {torch.float32: 0, torch.bfloat16: 1}


class DecodeAttention:
    """softmax(q k^T * scale) v of one position's query heads, grouped [1, n_kv, group, hd]
    (float32, contiguous), over cache positions [lo, lo + n) of k, v [1, n_kv, slots, hd],
    written into out [1, n_kv, group, hd] (float32)."""

    def __init__(self, lib, k: torch.Tensor, v: torch.Tensor, group: int, out: torch.Tensor,
                 new: tuple[torch.Tensor, torch.Tensor] | None = None):
        self._fn, self._fn_new = lib.cg_attend, lib.cg_attend_new
        _, n_kv, _, hd = k.shape
        self._head = (n_kv, group, hd)
        self._kv = (k.data_ptr(), v.data_ptr(), _DTYPES[k.dtype], k.stride(1))
        self._out = out.data_ptr()
        self._new = None if new is None else (new[0].data_ptr(), new[1].data_ptr())
        self._keep = (k, v, out, new)

    @staticmethod
    def for_cache(k: torch.Tensor, v: torch.Tensor, group: int, out: torch.Tensor,
                  new: tuple[torch.Tensor, torch.Tensor] | None = None) -> DecodeAttention | None:
        """The native attention over this cache, or None where it does not apply (no library, a
        GPU, another dtype or layout, head sizes the library does not take). new: where the
        step's new keys and values are ([n_kv, hd] float32 each), for calls that store them
        first (slot given)."""
        lib = native.library()
        hd = k.shape[-1]
        if (lib is None or k.device.type != "cpu" or k.dtype not in _DTYPES or v.dtype != k.dtype
                or k.stride() != v.stride() or k.stride(-1) != 1 or k.stride(2) != hd
                or out.dtype != torch.float32 or not out.is_contiguous() or out.shape[-1] != hd
                or hd % 16 or hd > 512 or group > 64):
            return None
        if new is not None and any(t.dtype != torch.float32 or not t.is_contiguous() or t.numel() != k.shape[1] * hd
                                   for t in new):
            return None
        return DecodeAttention(lib, k, v, group, out, new)

    def __call__(self, q: torch.Tensor, scale: float, lo: int, n: int, slot: int | None = None) -> None:
        """slot: first store the new keys and values there (in the cache's dtype, rounded to
        nearest as torch's copy_ does)."""
        n_kv, group, hd = self._head
        k, v, bf16, head_stride = self._kv
        if slot is None:
            rc = self._fn(n_kv, group, hd, scale, q.data_ptr(), k, v, bf16, head_stride, lo, n, self._out)
        else:
            rc = self._fn_new(n_kv, group, hd, scale, q.data_ptr(), k, v, bf16, head_stride, lo, n, self._out,
                              *self._new, slot)
        if rc:
            raise RuntimeError(f"native attention failed (code {rc})")


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """The same for whole tensors (tests): q [1, n_kv, group, hd] float32, k, v [1, n_kv, n, hd]."""
    out = torch.empty(q.shape, dtype=torch.float32)
    f = DecodeAttention.for_cache(k, v, q.shape[2], out)
    if f is None:
        raise ValueError("the native attention does not take these tensors")
    f(q.contiguous(), scale, 0, k.shape[2])
    return out

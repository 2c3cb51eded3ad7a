"""Embedding tables and output heads (issue 13: large vocabularies at llama.cpp speed).

The vocabulary-sized matrices are the largest of a small model (Qwen2.5: 152k x 1536). QuantRows
keeps no copy of them: rows are dequantized on demand from the GGUF file's own blocks (mapped,
not read), so an embedding lookup costs the few rows it reads. As an output head it ranks the
vocabulary with an int8 copy (one scale per row) and recomputes the REFINE best candidates of
each position exactly from the file's blocks: what decides sampling and dominates the
log-softmax is exact; only far-down logits carry the ranker's error.

The ranker runs on FBGEMM's int8 matmul (integer dot products: ~4x faster than the int4 or
int8-weight kernels on a 152k-row head here). Packing it takes ~0.5 s per 30M weights, so for
large heads it is packed on another thread while the model already answers with
`_weight_int8pack_mm` on the same int8 weights.
"""
from __future__ import annotations

import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .qlinear import fbgemm_int8_pack, int8_kernel_works, int8_rows_of
from .quant import dequantize_rows, raw_rows
from .sampling import top_indices
from .weight_cache import release_pages
from chatgui.common.malloc import give_back_freed_memory

# fbgemm_ranker makes a quantized tensor on purpose (see there); torch warns that making them is
# deprecated. Filtered here, once, rather than with warnings.catch_warnings on the loading
# thread: that swaps the process's filters from another thread and can lose or keep filters.
warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel and other quantized",
                        category=UserWarning)

# Heads up to this many weights wait for their FBGEMM ranker while loading (~0.2 s for the
# default model's 28M); larger ones pack it in the background.
WAIT_FOR_RANKER = 40_000_000


def ranker_parts(path, t: TensorInfo, rows_per_chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 [V, K], float32 scale [V]) of a vocabulary table (never the whole table in float32)."""
    return int8_rows_of(path, t, rows_per_chunk)


RANKER_CHUNK = 32_000_000     # weights packed at once (see fbgemm_ranker)
# Heads whose rows are shorter than this are packed FOLD rows to one (see fbgemm_ranker).
FOLD_BELOW = 1024
FOLD = 4


def fbgemm_ranker(q: torch.Tensor, scale: torch.Tensor, release=None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """f(x [M, in] float32) -> approximately x @ (q * scale).T, by FBGEMM's int8 matmul (x is
    quantized on the fly to 7 bits with one scale, so the integer dot products cannot saturate),
    or None where this torch build has no FBGEMM (ARM) or the deprecated API is gone.

    The vocabulary is packed in chunks of rows, each its own matmul, and release(rows) is called
    on each chunk's source once it is packed: packing a 150-230M-weight head at once held its
    source and a transient copy next to the packed one, ~2x its size above the final memory.

    Short rows (< FOLD_BELOW) are folded: with p = ceil(n / 4), packed row r holds rows r, p + r,
    2p + r and 3p + r side by side (zeros past the end), with unit scales, and the input is x
    four times, block-diagonally ([x, 0, 0, 0], [0, x, 0, 0], ...); the scales multiply the
    result. The same products, but FBGEMM reads short rows slowly and pads each row to a
    multiple of 512 (a 640-long row takes 1,024 bytes), so folded heads of short rows take less
    time and memory per token; 1536-long rows gain nothing and stay as they are. Several
    positions at once pay for it (the input is 4x larger). Figures:
    benchmarks/results/2026-12-07-figures-from-docstrings.md."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return None
    try:
        n, k = q.shape
        fold = FOLD if k < FOLD_BELOW else 1
        per_part = -(-n // fold)          # rows of q in each of the fold parts
        rows = max(1, RANKER_CHUNK // (k * fold))
        packs = []
        # Folded chunks are laid out in one buffer, reused: FBGEMM copies what it packs, and a
        # fresh 32 MB buffer per chunk stayed in the allocator's heap (+130 MB on Gemma).
        scratch = torch.empty(min(rows, per_part), fold * k, dtype=torch.int8) if fold > 1 else None
        for start in range(0, per_part, rows):
            parts = [q[i * per_part + start:min(i * per_part + start + rows, n, (i + 1) * per_part)] for i in range(fold)]
            width = len(parts[0])
            if fold > 1:
                folded = scratch[:width]
                for i, part in enumerate(parts):
                    folded[:len(part), i * k:(i + 1) * k] = part
                    folded[len(part):, i * k:(i + 1) * k] = 0
                packs.append(fbgemm_int8_pack(folded, torch.ones(width)))
            else:
                packs.append(fbgemm_int8_pack(parts[0], scale[start:start + rows]))
            if release is not None:
                for p in parts:
                    if len(p):
                        release(p)
            give_back_freed_memory()        # the chunk's temporaries: else ~100 MB above the result
        op = torch.ops.quantized.linear_dynamic
        scale = scale.float()

        def rank(x: torch.Tensor) -> torch.Tensor:
            m = x.shape[0]
            if fold == 1:
                return op(x, packs[0], True) if len(packs) == 1 else torch.cat([op(x, p, True) for p in packs], dim=-1)
            blocks = x.new_zeros(m, fold, fold * k)
            for i in range(fold):
                blocks[:, i, i * k:(i + 1) * k] = x
            blocks = blocks.view(m * fold, fold * k)
            y = torch.cat([op(blocks, p, True) for p in packs], dim=-1)        # [m * fold, per_part]
            return y.view(m, fold * per_part)[:, :n].mul(scale)

        rank(torch.zeros(1, k))
    except Exception:       # the int8-weight kernel serves instead
        return None
    return rank


def _in_background(fn, *args) -> Future:
    pool = ThreadPoolExecutor(1, thread_name_prefix="chatgui-load")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)      # the thread ends when fn returns


class QuantRows(nn.Module):
    REFINE = 64
    REFINE_POSITIONS = 64        # positions refined at once (bounds the dequantized rows held)
    # Rows read from the mapped file between giving its pages back: each row read brings a page
    # of the file into this process's resident memory, and the exact refinement reads 64 rows a
    # token, so a long chat would otherwise hold most of a 150-180 MB table (they are read back
    # from the OS's file cache when touched again: a minor fault, not a disk read).
    RELEASE_EVERY_ROWS = 2048

    def __init__(self, path, table: TensorInfo, ranker: tuple[torch.Tensor, torch.Tensor] | None = None,
                 release=None):
        """ranker: (int8 [V, K], scale [V]) to serve as an output head (ranker_parts); None for an
        embedding table only. release(tensor): gives back the pages of the int8 copy once FBGEMM
        holds its own (it is mapped from the weight cache; see weight_cache.release_pages)."""
        super().__init__()
        self._release = release
        self.path, self.table = path, table
        # The table's pages as mapped from the file, to give back; None where the table is not a
        # writable file mapping (raw_rows would copy it, and on other memory the release zeroes).
        mapped = isinstance(table.data, np.memmap) and table.data.flags.writeable
        self._file_pages = raw_rows(table) if mapped else None
        self.out_features, self.in_features = table.shape
        self.register_buffer("rank_q", None if ranker is None else ranker[0])
        self.register_buffer("rank_scale", None if ranker is None else ranker[1].float())
        self.ranker: Callable | None = None
        self._ranker_job: Future | None = None
        self._rows_read = 0
        if ranker is not None:
            scales = self.rank_scale.to(torch.bfloat16)
            if int8_kernel_works("cpu"):
                self._interim = lambda x: torch._weight_int8pack_mm(x.to(torch.bfloat16), self.rank_q, scales)
            else:
                self._interim = lambda x: F.linear(x, self.rank_q.float() * self.rank_scale[:, None])
            self._ranker_job = _in_background(self._pack_ranker)
            if self.rank_q.numel() <= WAIT_FOR_RANKER:
                self.finish_loading()

    def _pack_ranker(self):
        # FBGEMM holds its own copy: the mapped source pages are given back as each chunk is
        # packed (read again only by the interim ranker, until this returns).
        try:
            return fbgemm_ranker(self.rank_q, self.rank_scale, self._release)
        finally:
            # fbgemm_ranker gives back each chunk's temporaries; its 32 MB folding buffer is freed
            # only as it returns (~30 MB of Gemma 3's resident memory otherwise)
            give_back_freed_memory()

    def finish_loading(self):
        """Wait for the FBGEMM ranker (if it is being packed)."""
        if self._ranker_job is not None:
            self.ranker = self._ranker_job.result() or self._interim
            self._ranker_job = None

    def _rank(self, x: torch.Tensor) -> torch.Tensor:
        if self._ranker_job is not None and self._ranker_job.done():
            self.finish_loading()
        return (self.ranker or self._interim)(x).float()      # float() is free where it already is

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        self.table.check_unchanged()   # these rows are read from the mapped file: SIGBUS if cut short
        out = dequantize_rows(self.path, self.table, ids.cpu()).to(ids.device)
        self._rows_read += ids.numel()
        if self._rows_read >= self.RELEASE_EVERY_ROWS and self._file_pages is not None:
            self._rows_read = 0
            release_pages(self._file_pages)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).float()
        approx = self._rank(x2)
        top = top_indices(approx, self.REFINE)                                             # [M, R]
        for i in range(0, len(x2), self.REFINE_POSITIONS):
            sl = slice(i, i + self.REFINE_POSITIONS)
            exact = torch.bmm(self.rows(top[sl]), x2[sl].unsqueeze(-1)).squeeze(-1)       # [m, R]
            approx[sl].scatter_(1, top[sl], exact)
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

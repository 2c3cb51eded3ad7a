""""Fits / May be slow / Won't fit": will a model run in this machine's free memory?

Need = file size x 1.2 (weights unpacked for the fast paths, plus buffers) + the KV cache at the
chosen context length + ~300 MB for the runtime itself. It fits when that is within 90% of the
memory free now; it may be slow when it is within the machine's total memory (other programs
must give way, or the system swaps); otherwise it won't fit. On CUDA (only when torch is already
imported and sees a GPU: we never import torch just to ask) the GPU's memory is used instead.
"""
from __future__ import annotations

import sys

from chatgui.common.io import Memory, system_ram

FITS, SLOW, NO_FIT, UNKNOWN = "Fits", "May be slow", "Won't fit", "Unknown"
RUNTIME_OVERHEAD = 300 << 20
WEIGHT_FACTOR = 1.2


def _vram(torch) -> Memory | None:
    try:
        if torch is not None and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return Memory(int(free), int(total), "VRAM")
    except Exception:                     # a broken driver must not break a label
        return None
    return None


def machine_memory() -> Memory | None:
    mem = _vram(sys.modules.get("torch"))      # only if the app already imported torch
    if mem is None:
        mem = system_ram()
    return mem


def memory_needed(file_size: int, kv_bytes: int) -> int:
    return int(file_size * WEIGHT_FACTOR) + kv_bytes + RUNTIME_OVERHEAD


def fit_label(file_size: int, kv_bytes: int, memory: Memory | None = None) -> str:
    mem = memory if memory is not None else machine_memory()
    if mem is None:
        return UNKNOWN
    need = memory_needed(file_size, kv_bytes)
    if need <= 0.9 * mem.free:
        return FITS
    if need <= mem.total:
        return SLOW
    return NO_FIT


def entry_fit(entry, context_length: int = 4096, memory: Memory | None = None) -> str:
    """The label for a catalog entry at a context length (capped at the model's own)."""
    ctx = min(context_length, entry.context_length)
    return fit_label(entry.size, entry.kv_cache_bytes(ctx), memory)

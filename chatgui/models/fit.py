""""Fits / May be slow / Won't fit": will a model run in this machine's free memory?

Need = file size x 1.2 (weights unpacked for the fast paths, plus buffers) + the KV cache at the
chosen context length + ~300 MB for the runtime itself. A Mixture-of-Experts model keeps its expert
weights quantized as stored and memory-mapped (the OS pages them in): every expert counts once, at
its file size, and only the active share (attention, shared weights) counts x 1.2.
It fits when that is within 90% of the memory free now; it may be slow when it is within the
machine's total memory (other programs must give way, or the system swaps); otherwise it won't fit.
On CUDA (only when torch is already imported and sees a GPU: we never import torch just to ask)
the GPU's memory is used instead.
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


def memory_needed(file_size: int, kv_bytes: int, active_fraction: float = 1.0) -> int:
    """active_fraction < 1: a Mixture-of-Experts model, whose experts are counted once, as stored."""
    active = file_size * active_fraction
    return int(active * WEIGHT_FACTOR + (file_size - active)) + kv_bytes + RUNTIME_OVERHEAD


def fit_label(file_size: int, kv_bytes: int, memory: Memory | None = None, active_fraction: float = 1.0) -> str:
    mem = memory if memory is not None else machine_memory()
    if mem is None:
        return UNKNOWN
    need = memory_needed(file_size, kv_bytes, active_fraction)
    if need <= 0.9 * mem.free:
        return FITS
    if need <= mem.total:
        return SLOW
    return NO_FIT


def entry_fit(entry, context_length: int = 4096, memory: Memory | None = None) -> str:
    """The label for a catalog entry at a context length (capped at the model's own)."""
    ctx = min(context_length, entry.context_length)
    return fit_label(entry.size, entry.kv_cache_bytes(ctx), memory, entry.active_fraction)


# -- speed: a simple bandwidth model ------------------------------------------------------------
# Decoding one token reads every active weight once, so on a CPU it is bound by memory bandwidth:
# tok/s ~ bandwidth / bytes read per token. ASSUMED_BANDWIDTH is what a laptop or desktop with two
# channels of DDR4/DDR5 streams in practice (theoretical 40-90 GB/s, ~20-25 measured by STREAM-like
# reads on one socket); a GPU's is far higher, so on VRAM this is a floor. The KV cache and the
# compute are left out: an upper bound for long chats, a fair guide for comparing models.
ASSUMED_BANDWIDTH = 20e9          # bytes per second


def bytes_per_token(entry) -> int:
    """The weights read per generated token: the whole file for a dense model, the active share of
    a Mixture-of-Experts (e.g. ~2 GB of Qwen3-30B-A3B's 18.6 GB)."""
    return int(entry.size * entry.active_fraction)


def tokens_per_second(entry, bandwidth: float = ASSUMED_BANDWIDTH) -> float:
    return bandwidth / max(1, bytes_per_token(entry))


# -- the model to recommend ---------------------------------------------------------------------
MIN_TOKENS_PER_SECOND = 4.0       # slower than this reads like a stall: not recommended


def recommended_model(context_length: int = 4096, memory: Memory | None = None, catalog=None,
                      bandwidth: float = ASSUMED_BANDWIDTH, architectures=None):
    """The best chat model that fits this computer: the highest-ranked catalog chat model whose
    fit is "Fits" at this context length and whose estimated speed is at least
    MIN_TOKENS_PER_SECOND; the default (small) model when none does or the memory is unknown.
    architectures: those the engine runs (chatgui.engine.archs.ARCHS; this layer cannot ask it),
    so that a model whose architecture is still to come is not offered."""
    from .catalog import default_entry, load_catalog
    entries = tuple(catalog) if catalog is not None else load_catalog()
    default = next((e for e in entries if e.default), None) or default_entry()
    mem = memory if memory is not None else machine_memory()
    if mem is None:
        return default
    fitting = [e for e in entries if e.is_chat and e.rank > 0 and entry_fit(e, context_length, mem) == FITS
               and tokens_per_second(e, bandwidth) >= MIN_TOKENS_PER_SECOND
               and (architectures is None or e.architecture in architectures)]
    return max(fitting, key=lambda e: e.rank, default=default)

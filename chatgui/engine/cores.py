"""Who uses the CPU cores while a model on the native kernels runs (issue 33).

The native library has a pool of its own (one thread per core, engine/native) that does the
products, which are nearly all of a pass's work. Torch's OpenMP workers, left at their default
count, spin for a while after each parallel operation (an attention, a softmax over the
vocabulary), on the cores the pool's threads then need: measured on 2 cores, Qwen2.5-0.5B
decoded 30 tokens/s with torch on 2 threads and 44 with torch on 1, and prefilled 64 against
113 tokens/s (benchmarks/results/2026-12-07-cores.md). So while such a model runs, torch works
on the calling thread alone; what is left to it (norms, RoPE, a softmax) is small.

OpenMP's thread count is a per-thread setting: it is lowered and put back in the thread that
runs the model, nesting counted per thread, so another thread's torch work keeps its threads.
(torch.set_num_threads also sets the count a thread starts from when it first uses torch: a
thread whose first torch call falls inside a pass starts with one. The engine's threads are
long-lived runner threads that load the model first, so none does.)
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

_local = threading.local()


@contextmanager
def torch_on_one_thread(active: bool = True):
    """Run the body with torch's intra-op threads at 1 in this thread (active=False: as it is)."""
    if not active:
        yield
        return
    depth = getattr(_local, "depth", 0)
    if depth == 0:
        _local.saved = torch.get_num_threads()
        if _local.saved > 1:
            torch.set_num_threads(1)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth -= 1
        if _local.depth == 0 and _local.saved > 1:
            torch.set_num_threads(_local.saved)


def kernels_own_cores(net) -> bool:
    """Whether every product of net's layers runs on the native kernels (then torch's threads
    would only compete with the pool's). A model with products on torch's forms (a format the
    library lacks, a GPU) keeps torch's threads for them."""
    from .native_linear import NativeLinear

    forms = [m for m in net.layers.modules() if hasattr(m, "kernel")]
    experts = [m.experts for m in net.layers.modules() if getattr(m, "experts", None) is not None]
    return (bool(forms) and all(isinstance(f, NativeLinear) for f in forms)
            and all(getattr(e, "native", None) is not None for e in experts))

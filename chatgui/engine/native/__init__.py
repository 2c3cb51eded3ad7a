"""The engine's native kernels (issue 33): a small C library of our own (cgkernels.c) that
multiplies GGUF-quantized weights, read as stored from the mapped file, by float32 activations.

It is an optional extension, built by `pip install` where a C compiler is present (setup.py)
and loaded here with ctypes; without it the engine uses its PyTorch forms (qlinear.py).
CHATGUI_KERNELS=avx512|avx2|portable forces a path, =off the PyTorch forms; unset, the best
path this CPU has. Nothing here imports torch at import time.
"""
from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

# GGUF type name -> the library's type code (cg_common.h)
TYPES = {"Q4_0": 0, "Q4_1": 1, "Q5_0": 2, "Q5_1": 3, "Q8_0": 4, "Q4_K": 5, "Q5_K": 6, "Q6_K": 7,
         "IQ4_NL": 8, "IQ4_XS": 9, "MXFP4": 10}
BLOCK_ELEMS = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256,
               "Q6_K": 256, "IQ4_NL": 32, "IQ4_XS": 256, "MXFP4": 32}
PATHS = {"portable": 1, "avx2": 2, "avx512": 3}
PATH_NAMES = {1: "portable C", 2: "AVX2", 3: "AVX-512"}
ENV = "CHATGUI_KERNELS"


class Segment(ctypes.Structure):
    """cg_seg: one GGUF tensor's rows (row_ids: the order they are written in, or NULL)."""
    _fields_ = [("type", ctypes.c_int32), ("n_rows", ctypes.c_int32), ("row_bytes", ctypes.c_int64),
                ("w", ctypes.c_void_p), ("row_ids", ctypes.c_void_p)]


_lock = threading.Lock()
_lib = None
_why_not: str | None = None
_loaded = False


def library_file() -> Path | None:
    """The built library beside this file (setuptools names it _cgkernels.<platform tag>.so)."""
    here = Path(__file__).parent
    for pattern in ("_cgkernels*.so", "_cgkernels*.pyd", "_cgkernels*.dylib"):
        found = sorted(here.glob(pattern))
        if found:
            return found[0]
    return None


def _bind(lib):
    c_int, c_i64, c_void = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.cg_supports.argtypes, lib.cg_supports.restype = [c_int], c_int
    lib.cg_select.argtypes, lib.cg_select.restype = [c_int], c_int
    lib.cg_path.argtypes, lib.cg_path.restype = [], c_int
    lib.cg_set_threads.argtypes, lib.cg_set_threads.restype = [c_int], c_int
    lib.cg_threads.argtypes, lib.cg_threads.restype = [], c_int
    lib.cg_linear.argtypes = [c_int, c_void, c_int, c_void, c_int, c_i64, c_void, c_i64]
    lib.cg_linear.restype = c_int
    lib.cg_linear_ex.argtypes = lib.cg_linear.argtypes + [c_void, c_void, c_int, c_void, c_int]
    lib.cg_linear_ex.restype = c_int
    lib.cg_stop_warming.argtypes, lib.cg_stop_warming.restype = [], None
    lib.cg_attend.argtypes = [c_int, c_int, c_int, ctypes.c_float, c_void, c_void, c_void, c_int, c_i64, c_i64, c_i64,
                              c_void]
    lib.cg_attend.restype = c_int
    lib.cg_attend_new.argtypes = lib.cg_attend.argtypes + [c_void, c_void, c_i64]
    lib.cg_attend_new.restype = c_int


def _load():
    global _lib, _why_not, _loaded
    wanted = (os.environ.get(ENV) or "").strip().lower()
    _loaded = True
    if wanted == "off":
        _why_not = f"turned off ({ENV}=off)"
        return
    if wanted in ("", "auto"):
        wanted = ""
    elif wanted not in PATHS:
        _why_not = f"{ENV}={wanted} is not one of auto, off, portable, avx2, avx512"
        return
    path = library_file()
    if path is None:
        _why_not = "not built (no C compiler when chatgui was installed)"
        return
    try:
        lib = ctypes.CDLL(str(path))
        _bind(lib)
    except (OSError, AttributeError) as e:
        _why_not = f"could not be loaded ({e})"
        return
    chosen = lib.cg_select(PATHS.get(wanted, 0))
    if chosen < 0:
        _why_not = f"{ENV}={wanted}: this CPU does not have it"
        return
    import torch

    lib.cg_set_threads(max(1, torch.get_num_threads()))
    _lib = lib


def library():
    """The loaded library (ctypes.CDLL), or None (why_not() says why)."""
    if not _loaded:
        with _lock:
            if not _loaded:
                _load()
    return _lib


def available() -> bool:
    return library() is not None


def why_not() -> str | None:
    library()
    return _why_not


def supports(name: str) -> bool:
    """Whether this CPU can run the path `name` (portable, avx2, avx512)."""
    lib = library()
    return lib is not None and bool(lib.cg_supports(PATHS[name]))


def select(name: str | None) -> str:
    """Use path `name` (None: the best one) from now on, in this process; returns its name.
    For tests and benchmarks: the app leaves the choice to CHATGUI_KERNELS."""
    lib = library()
    if lib is None:
        raise RuntimeError(f"the native kernels are {why_not()}")
    code = lib.cg_select(PATHS[name] if name else 0)
    if code < 0:
        raise RuntimeError(f"this CPU cannot run the {name} kernels")
    return {v: k for k, v in PATHS.items()}[code]


def kernels_missing() -> bool:
    """Whether this install has no built library (no C compiler at install time), found without
    loading it or torch (the UI asks at start-up)."""
    return library_file() is None


def set_threads(n: int) -> int:
    lib = library()
    return lib.cg_set_threads(n) if lib is not None else 0


def path_name() -> str | None:
    lib = library()
    return PATH_NAMES.get(lib.cg_path()) if lib is not None else None


def status_line() -> str:
    """One plain line for Model options: which kernels the CPU engine multiplies with."""
    lib = library()
    if lib is None:
        return f"Native CPU kernels: {why_not()}; using PyTorch's kernels (slower)."
    return f"Native CPU kernels: {path_name()}, {lib.cg_threads()} threads."

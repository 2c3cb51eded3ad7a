"""One display name per model file, used everywhere (status bar, reply header, export, errors).

A catalog file (by sha256 when it is known, else by file name and size) gets its catalog name;
any other file gets a tidy name made from its file name. The GGUF's own general.name is never
used: it is often a training-run label ("Smollm2 135M 8k Lc100K Mix1 Ep2").
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .catalog import load_catalog

# Quantization tags at the end of a file stem: Q4_K_M, Q4_1, IQ3_XS, F16, BF16, f32...
_QUANT = re.compile(r"[._-]((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32)$", re.IGNORECASE)


def catalog_entry_for(path: str | os.PathLike, sha256: str | None = None):
    p = Path(path)
    for e in load_catalog():
        if sha256 and sha256.lower() == e.sha256:
            return e
    if sha256:
        # the hash is known and matches no pinned entry: a name alone must not claim it, except for
        # an entry the catalog does not pin (its sha256 came from the hub): the name is all it has
        return next((e for e in load_catalog() if not e.pinned and p.name == e.file), None)
    try:
        size = p.stat().st_size
    except OSError:
        size = None
    for e in load_catalog():
        if p.name == e.file and (not e.pinned or size is None or size == e.size):
            return e
    return None


def clean_name(path: str | os.PathLike) -> str:
    """'my_model-7b.Q4_K_M.gguf' -> 'my model-7b (Q4_K_M)'."""
    stem = Path(path).name
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    quant = ""
    m = _QUANT.search(stem)
    if m and m.start() > 0:
        quant, stem = m.group(1).upper(), stem[:m.start()]
    name = re.sub(r"\s+", " ", stem.replace("_", " ")).strip(" .-") or "model"
    return f"{name} ({quant})" if quant else name


def display_name(path: str | os.PathLike, sha256: str | None = None) -> str:
    entry = catalog_entry_for(path, sha256)
    return entry.name if entry else clean_name(path)

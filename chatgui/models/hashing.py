"""sha256 of a file, in blocks, with progress."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable


def sha256_of(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    h = hashlib.sha256()
    total = Path(path).stat().st_size
    done = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return h.hexdigest()

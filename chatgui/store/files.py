"""Reading files that may be hostile (huge, special, unreadable) and moving broken ones aside."""
from __future__ import annotations

import os
import stat
from pathlib import Path


class FileTooLarge(Exception):
    def __init__(self, size: int, limit: int):
        super().__init__(f"the file is too large ({_mb(size)}; the limit is {_mb(limit)})")
        self.size = size
        self.limit = limit


class NotRegularFile(Exception):
    pass


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def read_capped(path: Path | str, limit: int) -> bytes:
    """Return the file's bytes, refusing (FileTooLarge) anything over `limit` without reading it.

    Raises NotRegularFile for folders, pipes and devices (opening a pipe would block forever)
    and OSError when the file cannot be read.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile("it is a folder, not a file" if stat.S_ISDIR(st.st_mode) else "it is not a regular file")
    if st.st_size > limit:
        raise FileTooLarge(st.st_size, limit)
    with open(path, "rb") as f:
        data = f.read(limit + 1)  # the file may have grown since the stat
    if len(data) > limit:
        raise FileTooLarge(len(data), limit)
    return data


def move_aside(path: Path | str, suffix: str = ".corrupt") -> Path:
    """Rename `path` to `<name><suffix>`, or `<name><suffix>.1`, .2 ... if that exists already.

    Never overwrites an earlier quarantined file. Returns the new path; raises OSError.
    """
    path = Path(path)
    target = path.with_name(path.name + suffix)
    n = 0
    while os.path.lexists(target):
        n += 1
        target = path.with_name(f"{path.name}{suffix}.{n}")
    os.rename(path, target)
    return target

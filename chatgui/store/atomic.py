"""Crash-safe file writes: the target holds either the old content or the new, never a mix."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .errors import StoreError


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder, then rename it over.

    The temp file is named ".<name>.<random>.tmp" so folder listings never take it for a chat.
    Raises StoreError (the old file untouched, the temp file removed) on any OSError.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise StoreError.wrap("Could not save", path, err) from err
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)  # the data must be on disk before the rename makes it visible
        finally:
            os.close(fd)
        _replace(tmp, path)
    except BaseException as err:  # KeyboardInterrupt too: never leave the temp file behind
        _remove_quietly(tmp)
        if isinstance(err, OSError):
            raise StoreError.wrap("Could not save", path, err) from err
        raise
    _fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _replace(src: str, dst: Path) -> None:
    # On Windows a virus scanner or indexer may hold the target open for a moment.
    for attempt in range(5):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable. Windows cannot open folders this way; skip it there."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the file itself is already synced
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

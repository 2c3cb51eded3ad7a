"""Crash-safe writes (the target holds the old content or the new, never a mix; no temp file is
left behind on any failure) and the sha256 of a file.

Each write goes to a uniquely named temp file in the target's folder (same filesystem, so the
rename is atomic; unique, so two writers never share one), is fsynced, renamed over the target,
and then the folder is fsynced too: without that, a power cut after the rename can bring back the
old name (ext4, XFS) even though the data was on disk.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

BLOCK = 4 << 20


@contextmanager
def atomic_writer(path: Path | str, *, prefix: str | None = None) -> Iterator[IO[bytes]]:
    """`with atomic_writer(p) as f: f.write(...)`: p is replaced when the block ends without an
    exception; on one (KeyboardInterrupt too) p is untouched and the temp file removed.
    The temp file is ".<name>.<random>.tmp" (hidden, and never taken for a chat or a model)."""
    with _temp_file_for(Path(path), prefix) as (fd, _tmp):
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())   # the data must be on disk before the rename makes it visible


def atomic_write(path: Path | str, fill: Callable[[Path], None], *, prefix: str | None = None) -> None:
    """For writers that need a path rather than a file (SQLite's backup): `fill(tmp)` writes the
    temp file, which is then fsynced and renamed over `path` as atomic_writer does."""
    with _temp_file_for(Path(path), prefix) as (fd, tmp):
        os.close(fd)
        fill(Path(tmp))
        _fsync_file(tmp)


@contextmanager
def _temp_file_for(path: Path, prefix: str | None) -> Iterator[tuple[int, str]]:
    """(fd, name) of a new temp file beside path; the block writes and fsyncs it. Renamed over
    path when the block ends, then the folder fsynced; removed on any exception, which is raised."""
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        yield fd, tmp
        _replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, data: object) -> None:
    atomic_write_text(path, json.dumps(data))


def fsync_dir(folder: Path | str) -> None:
    """Make a rename in `folder` durable. Windows cannot open a folder for this (and its rename is
    durable once done); some filesystems refuse it: the file itself is synced either way."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path | str, progress: Callable[[int, int], None] | None = None) -> str:
    """The file's sha256 (hex), read in 4 MiB blocks. `progress(done, total)` after each block; it
    may raise to stop early (a cancelled job), and that exception passes through."""
    digest = hashlib.sha256()
    total = os.stat(path).st_size
    done = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY if os.name != "nt" else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def remove_quietly(path: Path | str) -> None:
    """Delete a file if it can be deleted; a file already gone or held is no error (a leftover)."""
    try:
        os.unlink(path)
    except OSError:
        pass

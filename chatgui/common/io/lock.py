"""An exclusive lock on a file across processes (flock / msvcrt), dropped by the operating system
when the process ends however it ends, so a stale lock file never blocks anyone.

Kept rather than the `filelock` package because the instance lock needs two things it lacks: an
existing lock file in a read-only data folder is still locked (opened read-only; flock allows it),
and the holder's process id is written into the file for the "already running" message
(filelock truncates the file on every acquire).
"""
from __future__ import annotations

import os
from pathlib import Path

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)   # type: ignore[attr-defined]  # Windows only
            return True
        except OSError:
            return False
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


class LockFile:
    """`lock = LockFile(path); lock.try_acquire()` -> True (held until `release()` or the process
    ends) or False (another process holds it). Raises OSError when the file cannot be opened."""

    def __init__(self, path: Path | str, *, allow_read_only: bool = False):
        self.path = Path(path)
        self.allow_read_only = allow_read_only
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = self._open()
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def write_owner(self) -> None:
        """Write this process's id into the held lock file (for another's message); quietly
        nothing where the file was opened read-only."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass

    def owner(self) -> int | None:
        """The process id the holder wrote, if any (read without taking the lock)."""
        try:
            text = self.path.read_bytes()[:32].decode("ascii", "replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing drops the lock; the file stays (removing it would race)
            self._fd = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            # A lock file that exists but cannot be written (a read-only folder): flock works on a
            # read-only descriptor. Windows' msvcrt.locking needs write access, so not there.
            if self.allow_read_only and os.name != "nt" and self.path.is_file():
                return os.open(self.path, os.O_RDONLY)
            raise

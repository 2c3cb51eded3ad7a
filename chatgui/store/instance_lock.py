"""One running chatgui per data folder: a lock on `.chatgui.lock` there, held while it runs.

The operating system drops the lock when the process ends, however it ends (kill -9 too), so
a stale lock file never blocks a start. The file holds the owner's process id for the message.
"""
from __future__ import annotations

import os
from pathlib import Path

from chatgui.common import paths
from .errors import AlreadyRunning, StoreError, describe_os_error

LOCK_NAME = ".chatgui.lock"

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


class InstanceLock:
    def __init__(self, folder: Path | str | None = None):
        self.path = Path(folder if folder is not None else paths.data_dir()) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning (another process has it) / StoreError (it cannot
        be taken: the app must stop)."""
        if self._fd is not None:
            return
        fd = self._open()
        if not _try_lock(fd):
            pid = _read_pid(fd)
            os.close(fd)
            who = f" (process {pid})" if pid else ""
            raise AlreadyRunning(f"chatgui is already running with the data folder {self.path.parent}{who}.",
                                 self.path, pid)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass   # opened read-only: the lock holds all the same, only the message lacks our pid
        self._fd = fd

    def _open(self) -> int:
        """The lock file, created if need be. An existing one that cannot be written (a read-only
        data folder) is locked all the same; one that cannot be made at all is a StoreError: the
        app must not run unlocked, or a second one would overwrite its chats."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            if os.name != "nt" and os.path.isfile(self.path):   # (flock works on a read-only file)
                try:
                    return os.open(self.path, os.O_RDONLY)
                except OSError:
                    pass
            raise StoreError(f"Could not create the lock file {self.path}: {describe_os_error(err)}.",
                             self.path, err) from err

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file stays (removing it would race)
            self._fd = None

    def __enter__(self) -> "InstanceLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None

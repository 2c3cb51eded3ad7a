"""One running chatgui per data folder: a lock on `.chatgui.lock` there, held while it runs.

The operating system drops the lock when the process ends, however it ends (kill -9 too), so
a stale lock file never blocks a start. The file holds the owner's process id for the message.
"""
from __future__ import annotations

from pathlib import Path

from chatgui.common import paths
from chatgui.common.io import LockFile

from .errors import AlreadyRunning, StoreError, describe_os_error

LOCK_NAME = ".chatgui.lock"


class InstanceLock:
    def __init__(self, folder: Path | str | None = None):
        self.path = Path(folder if folder is not None else paths.data_dir()) / LOCK_NAME
        # An existing lock file that cannot be written (a read-only data folder) is locked all the
        # same; only the message then lacks our pid.
        self._lock = LockFile(self.path, allow_read_only=True)

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning (another process has it) / StoreError (it cannot
        be taken: the app must stop)."""
        if not self._try_acquire():
            pid = self._lock.owner()
            who = f" (process {pid})" if pid else ""
            raise AlreadyRunning(f"chatgui is already running with the data folder {self.path.parent}{who}.",
                                 self.path, pid)
        self._lock.write_owner()

    def _try_acquire(self) -> bool:
        """A lock file that cannot be made at all is a StoreError: the app must not run unlocked,
        or a second one would overwrite its chats."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._lock.try_acquire()
        except OSError as err:
            raise StoreError(f"Could not create the lock file {self.path}: {describe_os_error(err)}.",
                             self.path, err) from err

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "InstanceLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

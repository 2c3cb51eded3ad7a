"""Errors and problem reports shared by the store modules."""
from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path


class StoreError(OSError):
    """Reading or writing the user's data failed; `str(err)` is a sentence fit for a dialog.

    It is an OSError so callers that already catch OSError keep working. `path` is the file
    involved (or None) and `errno` the underlying error number when there was one.
    """

    def __init__(self, message: str, path: Path | str | None = None, cause: BaseException | None = None):
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.errno = getattr(cause, "errno", None)

    @classmethod
    def wrap(cls, what: str, path: Path | str, err: OSError) -> "StoreError":
        """Build 'Could not save chat.json: the disk is full' from an OSError."""
        return cls(f"{what} {Path(path).name}: {describe_os_error(err)}", path, err)


@dataclass(frozen=True)
class StoreProblem:
    """A file the store could not use, for the UI to show once."""
    path: Path
    reason: str       # what is wrong with it
    action: str       # what the store did about it

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason} ({self.action})"


_ERRNO_TEXT = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the folder is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "the file or folder does not exist",
    errno.EISDIR: "a folder is in the way",
}
if hasattr(errno, "EDQUOT"):
    _ERRNO_TEXT[errno.EDQUOT] = "the disk quota is exceeded"


def describe_os_error(err: OSError) -> str:
    text = _ERRNO_TEXT.get(getattr(err, "errno", None) or -1)
    if text:
        return text
    return err.strerror or str(err) or type(err).__name__


class DatabaseUnusable(StoreError):
    """The chat database cannot be opened safely; nothing in it was changed.

    `kind` says why, for the UI to choose its words: "corrupt", "not_sqlite", "truncated",
    "locked" (another program holds it), "newer" (written by a newer chatgui) or "unreadable".
    `backups` are the backups that could replace it, newest first (see backup.restore_backup).
    """

    def __init__(self, message: str, kind: str, path: Path | str, backups: list[Path] | None = None,
                 cause: BaseException | None = None):
        super().__init__(message, path, cause)
        self.kind = kind
        self.backups = list(backups or [])


class AlreadyRunning(StoreError):
    """Another chatgui is using this data folder (see instance_lock.InstanceLock)."""

    def __init__(self, message: str, path: Path | str, pid: int | None = None):
        super().__init__(message, path)
        self.pid = pid

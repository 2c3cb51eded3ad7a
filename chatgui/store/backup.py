"""Daily backups of the chat database (SQLite's online backup API; the newest 3 kept) and
restoring one in place of a damaged database, which is moved aside, never overwritten."""
from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from .atomic import _fsync_dir
from .database import DB_NAME, check_file, connect
from .errors import DatabaseUnusable, StoreError
from .files import move_aside

BACKUP_FOLDER = "backups"
KEEP = 3
DAY = 24 * 3600


def backups_dir(folder: Path) -> Path:
    return Path(folder) / BACKUP_FOLDER


def list_backups(folder: Path) -> list[Path]:
    """Backups of the database in `folder`, newest first."""
    try:
        found = [p for p in backups_dir(folder).glob("history-*.sqlite3") if p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.name, reverse=True)  # names sort by their time stamps


def backup_due(folder: Path, now: float | None = None) -> bool:
    backups = list_backups(folder)
    if not backups:
        return True
    try:
        return (now or time.time()) - backups[0].stat().st_mtime >= DAY
    except OSError:
        return True


def make_backup(db_path: Path, folder: Path, keep: int = KEEP) -> Path:
    """Copy the live database (consistent even while it is written) and drop the oldest copies."""
    target_dir = backups_dir(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    target = target_dir / f"history-{stamp}.sqlite3"
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".history-", suffix=".tmp", dir=target_dir)
        os.close(fd)
    except OSError as err:
        raise StoreError.wrap("Could not back up the chats to", target_dir, err) from err
    try:
        src = connect(db_path)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        finally:
            dst.close()
            src.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as err:
        _unlink(tmp)
        raise StoreError(f"Could not back up the chats: {err}", target) from err
    _fsync_dir(target_dir)
    for old in list_backups(folder)[keep:]:
        _unlink(old)
    return target


_WHY_NOT = {"corrupt": "is damaged", "truncated": "is truncated", "not_sqlite": "is not a chatgui database",
            "newer": "was written by a newer version of chatgui"}


def restore_backup(folder: Path, backup: Path) -> list[Path]:
    """Put `backup` in place of the database in `folder`. The database there (and its -wal and
    -shm files) are moved aside as `.corrupt` first, never deleted. Returns where they went.
    Raises DatabaseUnusable if the backup itself is not sound (then nothing is moved)."""
    folder, backup = Path(folder), Path(backup)
    db = folder / DB_NAME
    try:
        check_file(backup, [])   # read-only: header, size, quick_check, version
    except DatabaseUnusable as err:
        reason = _WHY_NOT.get(err.kind, "cannot be read")
        raise DatabaseUnusable(f"The backup {backup.name} cannot be used: it {reason}.", err.kind, backup) from err
    moved = []
    try:
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if os.path.lexists(path):
                moved.append(move_aside(path))
        fd, tmp = tempfile.mkstemp(prefix=".restore-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, open(backup, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, db)
        except BaseException:
            _unlink(tmp)
            raise
    except OSError as err:
        raise StoreError.wrap("Could not restore the backup into", db, err) from err
    _fsync_dir(folder)
    return moved


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

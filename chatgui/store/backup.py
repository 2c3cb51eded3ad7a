"""Daily backups of the chat database (SQLite's online backup API; the newest 3 kept) and
restoring one in place of a damaged database, which is moved aside, never overwritten.

A backup's time is the one in its name (history-YYYYmmdd-HHMMSS, local time), checked against
the clock: a name in the future (the clock was set ahead when it was made) falls back to the
file's time, and when that is in the future too the backup counts as older than every other.
So a backup stamped in the future never makes the new ones look old (deleted at once) or stops
them (not due for years)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

from chatgui.common import io
from .database import DB_NAME, check_file, connect
from .errors import DatabaseUnusable, StoreError
from .files import move_aside

BACKUP_FOLDER = "backups"
KEEP = 3
DAY = 24 * 3600
_STAMP = "%Y%m%d-%H%M%S"
_SLACK = 3600   # a stamp up to an hour ahead still counts (a daylight-saving hour read back either way)


def _now() -> float:
    return time.time()


def backups_dir(folder: Path) -> Path:
    return Path(folder) / BACKUP_FOLDER


def recorded_time(backup: Path, now: float | None = None) -> float | None:
    """When `backup` was made, as far as can be believed: the time in its name, else (no time
    there, or one in the future) its file time; None when both are in the future."""
    now = _now() if now is None else now
    try:
        named = time.mktime(time.strptime(backup.stem.removeprefix("history-"), _STAMP))
    except (ValueError, OverflowError):
        named = None
    if named is not None and named <= now + _SLACK:
        return named
    try:
        modified = backup.stat().st_mtime
    except OSError:
        return None
    return modified if modified <= now + _SLACK else None


def list_backups(folder: Path) -> list[Path]:
    """Backups of the database in `folder`, newest first by their recorded time; those whose
    time is in the future last (newest name first)."""
    try:
        found = [p for p in backups_dir(folder).glob("history-*.sqlite3") if p.is_file()]
    except OSError:
        return []
    now = _now()
    times = {p: recorded_time(p, now) for p in found}
    return sorted(found, key=lambda p: (times[p] is not None, times[p] or 0.0, p.name), reverse=True)


def backup_due(folder: Path, now: float | None = None) -> bool:
    """True when no backup was made in the last day (by a clock that was right)."""
    now = _now() if now is None else now
    newest = max((t for p in list_backups(folder) if (t := recorded_time(p, now)) is not None), default=None)
    return newest is None or now - newest >= DAY


def make_backup(db_path: Path, folder: Path, keep: int = KEEP) -> Path:
    """Copy the live database (consistent even while it is written) and drop the oldest copies."""
    target_dir = backups_dir(folder)
    stamp = time.strftime(_STAMP, time.localtime(_now()))
    target = target_dir / f"history-{stamp}.sqlite3"

    def copy_database(tmp: Path) -> None:
        src = connect(db_path)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
        finally:
            dst.close()
            src.close()

    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        io.atomic_write(target, copy_database, prefix=".history-")
    except OSError as err:
        raise StoreError.wrap("Could not back up the chats to", target_dir, err) from err
    except sqlite3.Error as err:
        raise StoreError(f"Could not back up the chats: {err}", target) from err
    for old in list_backups(folder)[keep:]:
        if old != target:   # (the one just made is the newest whatever the others say)
            io.remove_quietly(old)
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
        with open(backup, "rb") as src, io.atomic_writer(db, prefix=".restore-") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except OSError as err:
        raise StoreError.wrap("Could not restore the backup into", db, err) from err
    return moved

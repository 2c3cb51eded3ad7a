"""Moving the chats of the one-file-per-chat layout into the database.

Every readable `<id>.json` in the old chats folder is imported in one transaction; only after
the commit are the files moved to `migrated/` there (kept, never deleted). A damaged file is
quarantined as before (`<name>.corrupt`); a file that is only unreadable, or from a newer
chatgui, is left where it is and reported. A chat already in the database (a migration cut
short after its commit) is not imported twice; its file is moved all the same.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from .errors import StoreProblem, describe_os_error
from .files import move_aside
from .legacy import Unusable, read_chat_file
from .writer import ChatWriter

MIGRATED = "migrated"
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\.json")


def legacy_files(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if _NAME_RE.fullmatch(e.name))
    except OSError:
        return []  # no old chats folder: nothing to migrate


def migrate_folder(writer: ChatWriter, folder: Path, limit: int, batch: int | None = None,
                   on_batch: Callable[[int, int], bool | None] | None = None) -> tuple[int, list[StoreProblem]]:
    """Import the chat files in `folder`; returns (chats imported, problems to show).

    batch: import this many files per transaction (None: all in one), each batch's files moved
    only after its commit, so the database is consistent after every batch and a migration cut
    short goes on where it stopped. on_batch(files done, files in all) is called after each
    batch; if it returns True the migration stops there (the rest waits for the next start)."""
    files = legacy_files(folder)
    if not files:
        return 0, []
    step = batch or len(files)
    imported, problems = 0, []
    for start in range(0, len(files), step):
        count, found = migrate_files(writer, folder, files[start:start + step], limit)
        imported += count
        problems += found
        if on_batch is not None and on_batch(min(start + step, len(files)), len(files)):
            return imported, problems
    try:
        (folder / ".index.json").unlink()  # the old listing cache described these files
    except OSError:
        pass
    return imported, problems


def migrate_files(writer: ChatWriter, folder: Path, files: list[Path], limit: int) -> tuple[int, list[StoreProblem]]:
    """Import these chat files of `folder` in one transaction, then move them to migrated/."""
    problems, chats, sources = [], [], []
    for path in files:
        try:
            chats.append(read_chat_file(path, limit))
            sources.append(path)
        except Unusable as bad:
            problems.append(_set_aside(path, bad))
    imported = writer.write_new(chats)  # one transaction; raises StoreError and moves nothing
    done = folder / MIGRATED
    for path in sources:
        try:
            done.mkdir(exist_ok=True)
            os.rename(path, _free_name(done / path.name))
        except OSError as err:
            problems.append(StoreProblem(path, "it was imported but could not be moved to "
                                         f"{MIGRATED}/ ({describe_os_error(err)})", "left in place"))
    return len(imported), problems


def _set_aside(path: Path, bad: Unusable) -> StoreProblem:
    if not bad.broken:
        return StoreProblem(path, bad.reason, "left untouched")
    try:
        moved = move_aside(path)
    except OSError as err:
        return StoreProblem(path, bad.reason, f"left in place: it could not be moved aside ({describe_os_error(err)})")
    return StoreProblem(path, bad.reason, f"moved to {moved.name}")


def _free_name(target: Path) -> Path:
    n = 0
    candidate = target
    while os.path.lexists(candidate):
        n += 1
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
    return candidate

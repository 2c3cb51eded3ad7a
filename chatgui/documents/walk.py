"""Walk a knowledge folder for documents, never failing and never looping.

Links to folders are followed (people link folders into the one they index) but each real
folder is entered once, by (device, inode): a link back to a parent is reported and skipped,
not walked forever. A folder that cannot be opened and a link that loops or leads nowhere are
reported with a plain reason and the walk goes on. Hidden entries (a leading dot: .git, .venv)
and a few build folders are skipped: they are not the user's documents.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from .extract import kind_of, os_reason

SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages"})


@dataclass(frozen=True)
class Found:
    path: str
    kind: str
    stat: os.stat_result


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str


def walk_documents(root: str, cancelled=lambda: False) -> tuple[list[Found], list[Problem]]:
    found: list[Found] = []
    problems: list[Problem] = []
    seen_folders: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    try:
        info = os.stat(root)
    except OSError as exc:
        return [], [Problem(root, os_reason(exc))]
    seen_folders.add((info.st_dev, info.st_ino))
    stack = [root]
    while stack and not cancelled():
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                entries = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(folder, f"folder not indexed: {os_reason(exc)}"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                info = os.stat(entry.path)  # follows links
            except OSError as exc:
                if entry.is_symlink() and (kind_of(entry.name) or exc.errno == errno.ELOOP):
                    problems.append(Problem(entry.path, os_reason(exc)))
                continue
            if entry.is_dir():
                if entry.name in SKIPPED_FOLDERS:
                    continue
                key = (info.st_dev, info.st_ino)
                if key in seen_folders:
                    if entry.is_symlink():
                        problems.append(Problem(entry.path, "a link to a folder that is already indexed (skipped)"))
                    continue
                seen_folders.add(key)
                subfolders.append(entry.path)
                continue
            kind = kind_of(entry.name)
            if not kind:
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen_files:
                continue  # the same file by another link: index it once
            seen_files.add(key)
            found.append(Found(entry.path, kind, info))
        stack.extend(reversed(subfolders))
    return found, problems

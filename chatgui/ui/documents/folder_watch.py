"""Knowledge folders watched while the app runs: a change (a file added, saved, renamed or
deleted, a folder made) brings that folder's index up to date without a restart.

QFileSystemWatcher watches each knowledge folder and its subfolders (a new or renamed file
changes its directory) and the files themselves (a save in place changes only the file), up to
MAX_PATHS (inotify's per-user limit is shared with other programs); beyond that, and for what
a watcher misses (network shares), the window also rescans every RESCAN_MS, which costs a stat
per file: the indexer reads only files whose size or times changed. A burst of changes (a copy
of many files, an editor's save in three steps) is one rescan, DEBOUNCE_MS after the last.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

MAX_PATHS = 8000
DEBOUNCE_MS = 1500
RESCAN_MS = 5 * 60 * 1000


def watch_paths(folders: list[tuple[int, str]], files: list[str], limit: int = MAX_PATHS) -> list[str]:
    """What to watch (run off the GUI thread: it walks the folders): every folder and subfolder
    (hidden ones skipped, as the indexer skips them), then the indexed files, up to limit."""
    paths: list[str] = []
    for _folder_id, root in folders:
        for here, dirs, _files in os.walk(root, onerror=lambda _error: None):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            paths.append(here)
            if len(paths) >= limit:
                return paths
    return paths + files[:limit - len(paths)]


class FolderWatch(QObject):
    changed = Signal(list)      # the ids of the folders that changed (once per burst)

    def __init__(self, parent=None, debounce_ms: int = DEBOUNCE_MS, rescan_ms: int = RESCAN_MS):
        super().__init__(parent)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._on_change)
        self.watcher.fileChanged.connect(self._on_change)
        self.folders: list[tuple[int, str]] = []
        self._pending: set[int] = set()
        self._debounce = QTimer(self, singleShot=True, interval=debounce_ms)
        self._debounce.timeout.connect(self._emit)
        self._rescan = QTimer(self, interval=rescan_ms)
        self._rescan.timeout.connect(self._rescan_all)
        if rescan_ms:
            self._rescan.start()

    def watch(self, folders: list[tuple[int, str]], paths: list[str]) -> None:
        """Watch these folders (id, path) through these paths (watch_paths), instead of before."""
        self.folders = list(folders)
        old = set(self.watcher.files()) | set(self.watcher.directories())
        new = set(paths)
        if old - new:
            self.watcher.removePaths(sorted(old - new))
        if new - old:
            self.watcher.addPaths(sorted(new - old))     # (a path gone meanwhile is skipped)

    def watched(self) -> set[str]:
        return set(self.watcher.files()) | set(self.watcher.directories())

    def folder_of(self, path: str) -> int | None:
        best = None
        for folder_id, root in self.folders:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                if best is None or len(root) > len(best[1]):
                    best = (folder_id, root)
        return best[0] if best else None

    def _on_change(self, path: str) -> None:
        folder_id = self.folder_of(path)
        if folder_id is not None:
            self._pending.add(folder_id)
            self._debounce.start()          # (restarted by each change of a burst)

    def _rescan_all(self) -> None:
        if self.folders:
            self._pending.update(folder_id for folder_id, _ in self.folders)
            self._emit()

    def _emit(self) -> None:
        ids, self._pending = sorted(self._pending), set()
        if ids:
            self.changed.emit(ids)

    def stop(self) -> None:
        self._debounce.stop()
        self._rescan.stop()
        paths = sorted(self.watched())
        if paths:
            self.watcher.removePaths(paths)

"""Where file dialogs open: the folder last used for that kind of file (kept in the settings),
else the user's documents folder, else the home folder; never the folder the app was started
from (a folder that no longer exists makes Qt's dialog fall back to it)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths


def documents_folder() -> str:
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)


def start_folder(folders: dict | None, kind: str) -> str:
    """The folder a dialog for `kind` ("export", "add_model", ...) opens in."""
    remembered = folders.get(kind) if isinstance(folders, dict) else None
    for candidate in (remembered, documents_folder(), str(Path.home())):
        if isinstance(candidate, str) and candidate and Path(candidate).is_dir():
            return candidate
    return str(Path.home())


def remember_folder(folders: dict | None, kind: str, chosen: str) -> None:
    """`chosen`: the file picked; its folder is where the next dialog of this kind opens."""
    if isinstance(folders, dict) and chosen:
        folders[kind] = str(Path(chosen).parent)

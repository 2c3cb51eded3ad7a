"""What the window does with the chat database as a whole: import and export files, and a
database that cannot be used (what is wrong; restoring its newest backup). Store calls that touch
files run as the window's background jobs (ui/common/jobs.py)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QT_TRANSLATE_NOOP
from PySide6.QtWidgets import QFileDialog

from chatgui.store import DatabaseUnusable, ExportFormat, HistoryStore, restore_backup
from chatgui.store.export import export_format

from chatgui.ui.common.file_dialogs import remember_folder, start_folder
from chatgui.ui.common.i18n import translate

UNUSABLE_NOTICE = "database-unusable"
# Why the database cannot be used, by DatabaseUnusable.kind.
_WHAT_IS_WRONG = {
    "corrupt": QT_TRANSLATE_NOOP("HistoryActions", "The chat database {path} is damaged (corrupt)."),
    "not_sqlite": QT_TRANSLATE_NOOP("HistoryActions", "The file {path} is not a chat database (it is not SQLite)."),
    "truncated": QT_TRANSLATE_NOOP("HistoryActions",
                                   "The chat database {path} is truncated: part of the file is missing."),
    "wal_damaged": QT_TRANSLATE_NOOP("HistoryActions", "The chat database {path} is damaged: changes saved in its "
                                                       "journal (-wal file) cannot be read."),
    "locked": QT_TRANSLATE_NOOP("HistoryActions", "The chat database {path} is locked by another program."),
    "newer": QT_TRANSLATE_NOOP("HistoryActions", "The chat database {path} was written by a newer version of chatgui."),
}
UNREADABLE = QT_TRANSLATE_NOOP("HistoryActions", "The chat database {path} cannot be read.")
# A database another program holds is not damaged: moving it aside would only confuse both.
_NO_RESTORE = {"locked"}


def backup_date(backup: Path) -> str:
    """'2026-11-29 18:05' from the backup's name (history-YYYYmmdd-HHMMSS), else its file time."""
    try:
        stamp = time.strptime(backup.stem.removeprefix("history-"), "%Y%m%d-%H%M%S")
    except ValueError:
        try:
            stamp = time.localtime(backup.stat().st_mtime)
        except OSError:
            return backup.name
    return time.strftime("%Y-%m-%d %H:%M", stamp)


class HistoryActions:
    def __init__(self, window):
        self.window = window
        self.jobs = window.jobs
        self._restoring = False   # a refresh of the list meanwhile must not offer the restore again
        self._import_cancels: set[threading.Event] = set()   # one per import under way
        window.library.unusable_handler = self.show_unusable

    @property
    def library(self):
        return self.window.library

    # -- import ------------------------------------------------------------------------------
    def import_dialog(self) -> None:
        folders = self.window.settings.folders
        path, _ = QFileDialog.getOpenFileName(self.window, translate("HistoryActions", "Import chats"),
                                              start_folder(folders, "import"),
                                              translate("HistoryActions", "JSON (*.json)"))
        if path:
            remember_folder(folders, "import", path)
            self.import_chats(path)

    def import_chats(self, path: str) -> None:
        """chatgui JSON or ChatGPT's conversations.json, read and written on a worker thread."""
        store = self.library.store
        cancel = threading.Event()
        self._import_cancels.add(cancel)

        def done(ids, error):
            self._import_cancels.discard(cancel)
            self._imported(path, ids, error)

        self.window.status.showMessage(translate("HistoryActions", "Importing {name}…").format(name=Path(path).name))
        same_title = translate("HistoryActions", "{title} (imported)")
        self.jobs.run(lambda: store.import_file(path, cancel, same_title), done)

    def cancel_imports(self) -> None:
        """The window closes: imports still reading their file stop (nothing of them is written)
        instead of holding the exit for as long as a huge export takes to read."""
        for cancel in list(self._import_cancels):
            cancel.set()

    def _imported(self, path: str, ids, error) -> None:
        notices, name = self.window.notices, Path(path).name
        if error is not None:
            notices.show_notice("import-result", translate("HistoryActions", "Could not import {name}: {error}")
                                .format(name=name, error=error), "error")
            self.window.status.clearMessage()
            return
        self.window.refresh_chat_list()
        if len(ids) == 1:
            done = translate("HistoryActions", "Imported 1 chat from {name}.")
        else:
            done = translate("HistoryActions", "Imported {count} chats from {name}.")
        notices.show_notice("import-result", done.format(count=len(ids), name=name), "info")
        self.window.status.clearMessage()

    # -- export ------------------------------------------------------------------------------
    def export_chat(self, path: str, kind: ExportFormat | str, on_done: Callable[[bool], None] | None = None) -> bool:
        """Save the open chat, then write it from the database on a worker thread (after the
        queued saves are written). False if there is nothing to export; how it went arrives later."""
        chat = self.window.current
        if chat is None or not chat.messages:
            return False
        kind = export_format(kind)     # an unknown format: ValueError here, never a file of another format
        store = self.library.store
        self.library.save(chat)

        def work():
            store.flush()   # the save just queued reaches the database first
            store.export_to_file(chat.id, path, kind)

        self.jobs.run(work, lambda _result, error: self._exported(path, error, on_done))
        return True

    def _exported(self, path: str, error, on_done) -> None:
        if error is not None:
            reason = getattr(error, "strerror", None) or error
            self.window.notices.show_notice("export-error", translate(
                "MainWindow", "Could not export to {path}: {error}").format(path=path, error=reason), "error")
        else:
            self.window.notices.remove("export-error")
            self.window.status.showMessage(translate("MainWindow", "Exported to {path}").format(path=path), 5000)
        if on_done is not None:
            on_done(error is None)

    # -- a database that cannot be used ------------------------------------------------------------
    def show_unusable(self, err: DatabaseUnusable) -> None:
        if self._restoring:
            return
        path = err.path or self.library.store.db_path
        what = translate("HistoryActions", _WHAT_IS_WRONG.get(err.kind, UNREADABLE))
        lines = [what.format(path=path), translate("HistoryActions", "Nothing was changed.")]
        actions = []
        if err.backups and err.kind not in _NO_RESTORE:
            newest = err.backups[0]
            lines.append(translate("HistoryActions", "Restoring a backup keeps the damaged file beside it."))
            caption = translate("HistoryActions", "Restore the backup of {date}").format(date=backup_date(newest))
            actions.append((caption, lambda: self.restore(newest)))
        elif err.kind == "locked":
            lines.append(translate("HistoryActions", "Close the other program and start chatgui again."))
        self.window.notices.show_notice(UNUSABLE_NOTICE, "\n".join(lines), "error", actions)

    def restore(self, backup: Path) -> None:
        """Put `backup` in place of the database (which restore_backup moves aside), then reopen."""
        old = self.library.store
        folder = old.folder
        notice = self.window.notices.get(UNUSABLE_NOTICE)
        if notice is not None:
            notice.setEnabled(False)   # one restore at a time
        self._restoring = True
        self.jobs.run(lambda: (old.retire(), restore_backup(folder, backup)),
                      lambda _result, error: self._restored(backup, error))

    def _restored(self, backup: Path, error) -> None:
        self._restoring = False
        notices = self.window.notices
        if error is not None:
            notice = notices.get(UNUSABLE_NOTICE)
            if notice is not None:
                notice.setEnabled(True)
            notices.show_notice("restore-error", translate("HistoryActions", "Could not restore the backup: {error}")
                                .format(error=error), "error")
            return
        store = HistoryStore(self.library.store.folder)
        self.window.store = self.library.store = store
        notices.remove(UNUSABLE_NOTICE)
        notices.remove("restore-error")
        notices.remove("list-error")
        self.window.status.showMessage(translate("HistoryActions", "Restored the backup of {date}.")
                                       .format(date=backup_date(backup)), 8000)
        self.window.refresh_chat_list()

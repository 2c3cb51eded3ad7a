"""Upgrading from the one-file-per-chat layout: the window comes first, then the old chat files
are moved into the database on a thread of their own, a batch (one transaction) at a time.

A notice says how far it is, and the chat list shows the chats as each batch lands (at most a
few times a second). Closing the window stops it after the batch under way; the rest is moved
at the next start (each batch's files are moved aside only once it is committed).
"""
from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from chatgui.store import HistoryStore, StoreError
from chatgui.ui.common.notices import NoticeArea

BATCH = 100          # chats per transaction: a batch takes ~25 ms, so the list fills in visibly
REFRESH_MS = 300     # the chat list is redrawn at most this often while chats arrive


class LegacyMigration(QObject):
    progressed = Signal(int, int)     # files done, files in all (emitted on the migration thread)
    ended = Signal(int, object)       # chats imported, StoreError or None (emitted on the migration thread)

    def __init__(self, store: HistoryStore, notices: NoticeArea, chats_arrived: Callable[[], None],
                 report: Callable[[Exception | None], None], parent=None):
        super().__init__(parent)
        self.store, self.notices = store, notices
        self.chats_arrived = chats_arrived   # redraw the chat list
        self.report = report                 # show the problems (and an error, if any)
        self.running = False
        self.done_count = (0, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh.timeout.connect(self.chats_arrived)
        self.progressed.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self.ended.connect(self._on_ended, Qt.ConnectionType.QueuedConnection)

    def start_if_needed(self) -> bool:
        if not self.store.legacy_pending():
            return False
        self.running = True
        self.notices.show_notice("migration", self.tr("Moving your chats to the new format…"), "info", closable=False)
        self._thread = threading.Thread(target=self._run, name="chatgui-migration", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        count, error = 0, None
        try:
            count = self.store.migrate_legacy(self._batch_done, BATCH)
        except StoreError as err:
            error = err
        self.ended.emit(count, error)

    def _batch_done(self, done: int, total: int) -> bool:
        self.progressed.emit(done, total)
        return self._stop.is_set()

    def _on_progress(self, done: int, total: int) -> None:
        self.done_count = (done, total)
        self.notices.set_text("migration", self.tr("Moving your chats to the new format: {done} of {total}…").format(
            done=f"{done:,}", total=f"{total:,}"))
        if not self._refresh.isActive():
            self._refresh.start()

    def _on_ended(self, count: int, error) -> None:
        self.running = False
        self._refresh.stop()
        self.notices.remove("migration")
        self.chats_arrived()
        self.report(error)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the batch under way (closing the window); True once the thread is done."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

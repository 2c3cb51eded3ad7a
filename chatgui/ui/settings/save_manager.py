"""Every save the window makes as the user works goes through one SaveManager with one timer:
the settings (sampling, theme, language, backend, window geometry and docks, the chat to reopen)
and a chat whose system prompt was edited. Saved as they change, not only on a clean quit, so a
crash (or kill -9) loses at most the last half second; gathered for DELAY_MS, because dragging a
splitter or holding an arrow key in a spin box makes many changes, and each kind is written
once however often it was asked for. Closing the window flushes what is pending.

    saves.register(SETTINGS, write_settings)      # a named writer, once
    saves.schedule()                               # settings changed (connectable to any signal)
    saves.request(f"chat:{id}", lambda: ...)       # a one-off writer; the newest for a key wins
    saves.close()                                  # the window closes: flush, then take no more

(A reply being written saves itself every 2 s on its own timer, ui/chat/reply_controller.py: a
periodic checkpoint while tokens stream, not a change to coalesce.)
"""
from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QObject, QTimer

DELAY_MS = 500
SETTINGS = "settings"

log = logging.getLogger(__name__)


class SaveManager(QObject):
    def __init__(self, parent=None, delay_ms: int = DELAY_MS):
        super().__init__(parent)
        self.saves = 0   # how many times pending writes were made (for tests and curiosity)
        self._writers: dict[str, Callable[[], object]] = {}
        self._pending: dict[str, Callable[[], object]] = {}
        self._closed = False
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)
        self._timer.timeout.connect(self.flush)

    def register(self, key: str, write: Callable[[], object]) -> None:
        self._writers[key] = write

    def schedule(self, *_args) -> None:
        """The settings changed (signal arguments are ignored)."""
        self.request(SETTINGS)

    def request(self, key: str, write: Callable[[], object] | None = None) -> None:
        """Write `key` within DELAY_MS. A later request within that time does not move the save
        on (steady changes still get saved every DELAY_MS), and replaces the key's writer."""
        if self._closed:
            return
        self._pending[key] = write if write is not None else self._writers[key]
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Make every pending write now, in the order first asked for. Writers report their own
        failures to the user (a StoreError in the status bar); anything else is logged, and
        does not stop the others."""
        self._timer.stop()
        pending, self._pending = self._pending, {}
        for key, write in pending.items():
            try:
                write()
            except Exception:   # noqa: BLE001 - one failing save must not lose the others
                log.exception("saving %s failed", key)
        if pending:
            self.saves += 1

    def close(self) -> None:
        """Flush and take no more requests: what a closing window does (its docks hiding as it
        goes would otherwise ask for a save of a window that is no longer there)."""
        self.flush()
        self._closed = True

    @property
    def pending(self) -> bool:
        return bool(self._pending)

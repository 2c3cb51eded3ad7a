"""Settings are saved as they change, not only on a clean quit: a crash (or kill -9) then loses
at most the last half second. Changes are gathered for DELAY_MS (dragging a splitter or holding
an arrow key in a spin box makes many) and written with one atomic save (store.save_settings)."""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from chatgui.ui.settings.window_state import store_window

DELAY_MS = 500


class SettingsAutosave(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.saves = 0   # how many times the file was written (for tests and curiosity)
        self._timer = QTimer(self, singleShot=True, interval=DELAY_MS)
        self._timer.timeout.connect(self.save_now)

    def schedule(self, *_args) -> None:
        """Something changed: save within DELAY_MS (a later change within that time moves it on
        only until the first one is DELAY_MS old, so steady changes still get saved)."""
        if not self._timer.isActive():
            self._timer.start()

    def save_now(self) -> None:
        self._timer.stop()
        self.window.record_last_chat()
        store_window(self.window, self.window.settings)
        self.saves += 1

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

"""The Qt side of chatgui.models.manager: its events, which arrive on download threads, reach the
GUI thread through queued signals."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from chatgui.models.manager import DownloadManager


class DownloadController(QObject):
    progress = Signal(str, object)      # key, Progress
    finished = Signal(str, str)         # key, installed path
    paused = Signal(str)
    cancelled = Signal(str)
    failed = Signal(str, str)           # key, message for the user
    _event = Signal(str, str, object)   # emitted on download threads

    def __init__(self, manager: DownloadManager | None = None, parent=None):
        super().__init__(parent)
        self.manager = manager or DownloadManager()
        # Queued: the slot runs in this object's (the GUI) thread, whichever thread emitted.
        self._event.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.manager.add_listener(lambda event, key, value: self._event.emit(event, key, value))

    def _deliver(self, event: str, key: str, value) -> None:
        if event == "progress":
            self.progress.emit(key, value)
        elif event == "finished":
            self.finished.emit(key, str(value))
        elif event == "paused":
            self.paused.emit(key)
        elif event == "cancelled":
            self.cancelled.emit(key)
        elif event == "failed":
            self.failed.emit(key, str(value))

    # Thin pass-throughs, so the page needs only this object.
    def start(self, spec):
        return self.manager.start(spec)

    def pause(self, key: str) -> None:
        self.manager.pause(key)

    def cancel(self, spec) -> None:
        if self.manager.is_running(spec.key):
            self.manager.cancel(spec.key)
        else:
            self.manager.forget_partial(spec)

    def is_running(self, key: str) -> bool:
        return self.manager.is_running(key)

    def running_keys(self) -> list[str]:
        return self.manager.running_keys()

    def partial_bytes(self, spec) -> int:
        return self.manager.partial_bytes(spec)

    def add_file(self, path: str, copy: bool):
        return self.manager.add_file(path, copy)

    @property
    def folder(self):
        return self.manager.folder

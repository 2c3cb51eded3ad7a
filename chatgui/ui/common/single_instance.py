"""One running chatgui per data folder. The first start takes the store's InstanceLock and
listens on a local socket named after the data folder; a second start asks it to come forward
("show", answered "ok") and leaves, or, when the first does not answer, says who holds the folder.
A folder that cannot be locked at all stops the start with a message (lock_failed)."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QMessageBox

from chatgui.common import paths
from chatgui.store import AlreadyRunning, InstanceLock, StoreError

from chatgui.ui.common.i18n import translate

ANSWER_WAIT_MS = 3000


def server_name(folder: Path) -> str:
    """The same folder gives the same name, however it was spelled (a hash keeps it short)."""
    digest = hashlib.sha256(str(Path(folder).resolve()).encode("utf-8")).hexdigest()[:16]
    return f"chatgui-{digest}"


def bring_forward(window) -> None:
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()


class SingleInstance(QObject):
    """Held by the first instance while it runs; `acquire` raises AlreadyRunning for a second."""
    show_requested = Signal()

    def __init__(self, folder: Path | None = None, parent=None):
        super().__init__(parent)
        self.folder = Path(folder) if folder is not None else paths.data_dir()
        self.lock = InstanceLock(self.folder)
        self.server: QLocalServer | None = None

    def acquire(self) -> None:
        self.lock.acquire()
        name = server_name(self.folder)
        # We hold the lock, so nobody else listens: a socket file left by a killed instance goes.
        QLocalServer.removeServer(name)
        server = QLocalServer(self)
        if server.listen(name):   # without it a second start still gets the message box
            server.newConnection.connect(self._on_connection)
            self.server = server

    def attach(self, window) -> None:
        self.show_requested.connect(lambda: bring_forward(window))

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.lock.release()

    def _on_connection(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._on_request(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_request(self, socket: QLocalSocket) -> None:
        if bytes(socket.readAll().data()).strip() == b"show":
            self.show_requested.emit()
            socket.write(b"ok\n")
            socket.flush()


def ask_first_to_show(folder: Path, wait_ms: int = ANSWER_WAIT_MS) -> bool:
    """True when the running instance answered that it brought its window forward."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(folder))
    if not socket.waitForConnected(wait_ms):
        return False
    socket.write(b"show\n")
    answered = socket.waitForBytesWritten(wait_ms) and socket.waitForReadyRead(wait_ms)
    ok = answered and bytes(socket.readAll().data()).strip() == b"ok"
    socket.disconnectFromServer()
    return ok


def second_start(err: AlreadyRunning, folder: Path) -> int:
    """What a second start does: the first window comes forward (0), or a message says why not (1)."""
    if ask_first_to_show(folder):
        return 0
    who = (translate("SingleInstance", "Another chatgui (process {pid}) is using the data folder {folder}.")
           .format(pid=err.pid, folder=folder) if err.pid else
           translate("SingleInstance", "Another chatgui is using the data folder {folder}.").format(folder=folder))
    box = QMessageBox(QMessageBox.Icon.Warning, "chatgui",
                      who + "\n\n" + translate("SingleInstance", "It did not answer when asked to show its window. "
                                               "Close it (or end that process) and start chatgui again."))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.exec()
    return 1


def lock_failed(err: StoreError, folder: Path) -> int:
    """What a start does when the data folder cannot be locked: it says why and stops (1).
    Running unlocked would let a second chatgui on the same folder overwrite this one's chats."""
    print(f"chatgui: {err}", file=sys.stderr)
    text = (translate("SingleInstance", "chatgui cannot start: {error}").format(error=err) + "\n\n"
            + translate("SingleInstance", "chatgui locks its data folder {folder} so that a second chatgui cannot "
                        "overwrite its chats. Make the folder writable (or choose another with CHATGUI_DATA_DIR) "
                        "and start again.").format(folder=folder))
    box = QMessageBox(QMessageBox.Icon.Critical, "chatgui", text)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.exec()
    return 1

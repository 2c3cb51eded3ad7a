""""Serve this model on 127.0.0.1:PORT": the app's local model behind the OpenAI chat API, for
other programs on this machine (any OpenAI client, another chatgui).

The server gets a model of its own, `load_model(path, device="cpu")`, loaded by a job of the
LocalServer's runner (why not the app's runner: see LocalServer). That costs memory (a second
copy of the model: for the default SmolLM2-135M Q4_1 about 0.2 GB more) but keeps the server and the app's own replies
independent: neither waits for the other, and the app can change its device or talk to a remote
server meanwhile. Loading another model file stops the server (turn it on again to serve the new
one). It listens on 127.0.0.1 only, so nothing outside this computer can reach it.
"""
from __future__ import annotations

import errno

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
                               QVBoxLayout)

from chatgui.common.runner import ModelRunner, ShuttingDown
from chatgui.models.naming import display_name
from chatgui.ui.common.i18n import translate
from chatgui.ui.common.named import named

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
STOP_WAIT_S = 3.0


class ClickLabel(QLabel):
    """A check box's words as a label that wraps; a click on them toggles the box, as on its own text."""

    def __init__(self, text: str, check: QCheckBox):
        super().__init__(text)
        self.check = check
        self.setWordWrap(True)
        self.setBuddy(check)

    def mouseReleaseEvent(self, event):   # noqa: N802 (Qt override)
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self.check.isEnabled() and self.rect().contains(
                event.position().toPoint()):
            self.check.click()


class ServeGroup(QGroupBox):
    """The widgets: a check box, the port, the URL (read-only, with a Copy button), a state line."""
    toggled = Signal(bool)   # by the user

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle(self.tr("Serve (OpenAI API)"))
        self.setObjectName("serveGroup")
        column = QVBoxLayout(self)
        row = QHBoxLayout()
        self.check = named(QCheckBox(), "serveCheck", self.tr("Serve this model to other programs"))
        # The words beside the box wrap (a check box's own text cannot): on one line they kept the
        # settings panel ~340 px wide, too wide for a 900 px window with the chat beside it.
        self.check_label = ClickLabel(self.tr("Serve this model on {host}, port").format(host=HOST), self.check)
        self.check.setToolTip(self.tr("Other programs on this computer can then use the model through the OpenAI "
                                      "chat API. The server loads its own copy of the model on the CPU (more "
                                      "memory)."))
        self.check_label.setToolTip(self.check.toolTip())
        self.port = named(QSpinBox(), "servePortSpin", self.tr("Server port"))
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText(self.tr("any"))
        self.port.setValue(DEFAULT_PORT)
        row.addWidget(self.check)
        row.addWidget(self.check_label, 1)
        row.addWidget(self.port)
        column.addLayout(row)
        url_row = QHBoxLayout()
        self.url = named(QLineEdit(), "serveUrlEdit", self.tr("Server address"))
        self.url.setReadOnly(True)
        self.url.setPlaceholderText(self.tr("not serving"))
        self.copy_button = named(QPushButton(self.tr("Copy")), "copyServeUrlButton",
                                  self.tr("Copy the server address"))
        self.copy_button.setEnabled(False)
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy_button)
        column.addLayout(url_row)
        self.state = named(QLabel(""), "serveStateLabel", self.tr("Server state"))
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.state)
        self.check.toggled.connect(self.toggled)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.url.text()))

    def show_state(self, state: str, text: str = "", url: str = "") -> None:
        self.check.blockSignals(True)
        self.check.setChecked(state in ("starting", "on"))
        self.check.blockSignals(False)
        self.port.setEnabled(state in ("off", "error"))
        self.url.setText(url)
        self.copy_button.setEnabled(bool(url))
        self.state.setText(text)
        self.state.setStyleSheet("color: #c0392b;" if state == "error" else "")


class LocalServer(QObject):
    """Starts and stops the server as jobs of a ModelRunner of its own (`chatgui-serve`), one at
    a time, in order: a stop has freed the port before the next start binds it, and a slow
    model load never holds up the GUI. `state_changed` says how it went.

    Why not the app's own runner (the one EngineClient owns): the app may chat with this very
    server (Remote backend at this URL). Its reply job then holds the app's runner while it
    waits for the server's answer; a server needing that runner would wait for it: a deadlock.
    So the server also has its own model copy, on its own runner (server/worker.py)."""
    state_changed = Signal(str, str, str)    # "starting" | "on" | "off" | "error", a sentence, the URL
    _start_done = Signal(int, object, str)   # generation, ServerHandle or None, error

    def __init__(self, parent=None):
        super().__init__(parent)
        self.handle = None                    # GUI thread only
        self.path: str | None = None          # the model file being served (or loading)
        self._generation = 0                  # bumped by stop() on the GUI thread: a start under way is dropped
        self._runner = ModelRunner("chatgui-serve")
        self._stopping: list = []             # handles whose stop job has not run yet
        self._start_done.connect(self._on_start_done)

    @property
    def running(self) -> bool:
        return self.handle is not None

    def start(self, path: str, port: int) -> None:
        self.stop(announce=False)
        self.path = path
        generation = self._generation
        self.state_changed.emit("starting", self.tr("Loading {name} for the server…").format(name=display_name(path)),
                                "")
        self._runner.submit(lambda _job: self._start(generation, path, port))

    def stop(self, wait: bool = False, reason: str = "", announce: bool = True) -> None:
        """wait: stop it here and now, and end the runner (the window is closing)."""
        self._generation += 1
        handle, self.handle = self.handle, None
        if wait:
            for pending in [handle, *self._stopping]:
                if pending is not None:
                    pending.stop(STOP_WAIT_S)    # (a handle stops safely twice)
            self._runner.close(timeout=0)   # a start still loading stops its server when done (stale)
        elif handle is not None:
            self._stop_later(handle)
        self.path = None
        if announce:
            self.state_changed.emit("off", reason, "")

    def _stop_later(self, handle) -> None:
        def stop(_job) -> None:
            handle.stop(STOP_WAIT_S)
            self._stopping.remove(handle)
        self._stopping.append(handle)
        try:
            self._runner.submit(stop)
        except ShuttingDown:
            stop(None)

    # -- on the runner thread ----------------------------------------------------------------
    def _start(self, generation: int, path: str, port: int) -> None:
        handle, error = None, ""
        try:
            from chatgui.engine import load_model
            from chatgui.engine.errors import ModelLoadError
            from chatgui.server import start_server
            from chatgui.server.runner import bind_socket
            if port:
                bind_socket(HOST, port).close()   # a port in use is found before the model is loaded
            model = load_model(path, device="cpu")
            model.name = display_name(path)
            handle = start_server(model, host=HOST, port=port)
        except ModelLoadError as e:
            error = translate("LocalServer", "Cannot serve the model: {error}").format(error=e)
        except OSError as e:
            # (translate, not self.tr: this thread may outlive the window)
            if e.errno == errno.EADDRINUSE:
                error = translate("LocalServer", "Cannot serve on {host}:{port}: the port is already in use. "
                                  "Choose another port (0 picks a free one).").format(host=HOST, port=port)
            elif e.errno == errno.EACCES:
                error = translate("LocalServer", "Cannot serve on {host}:{port}: the port is not allowed. "
                                  "Choose another port (0 picks a free one).").format(host=HOST, port=port)
            else:
                error = translate("LocalServer", "Cannot serve on {host}:{port}: {error}").format(
                    host=HOST, port=port, error=e.strerror or e)
        except Exception as e:   # noqa: BLE001 - must reach the user
            error = translate("LocalServer", "Cannot serve the model: {error}").format(
                error=f"{type(e).__name__}: {e}")
        # An int read here, written on the GUI thread: a stale read only delays the stop until
        # _on_start_done, which decides on the GUI thread.
        if generation != self._generation or self._runner.closing.is_set():
            if handle is not None:       # turned off (or the window closed) while it was starting
                handle.stop(STOP_WAIT_S)
            return
        try:
            self._start_done.emit(generation, handle, error)
        except RuntimeError:   # this object is gone (the window was closed)
            if handle is not None:
                handle.stop(STOP_WAIT_S)

    # -- back on the GUI thread ----------------------------------------------------------------
    def _on_start_done(self, generation: int, handle, error: str) -> None:
        if generation != self._generation:
            if handle is not None:
                self._stop_later(handle)
            return
        if handle is None:
            self.path = None
            self.state_changed.emit("error", error, "")
        else:
            self.handle = handle
            self.state_changed.emit("on", self.tr("Serving “{name}” to programs on this computer (it has its own "
                                                  "copy of the model, on the CPU).").format(name=handle.model_name),
                                    handle.url)


class ServeController(QObject):
    """Ties the check box, the server and the status bar to the app's model."""

    def __init__(self, group: ServeGroup, status, settings, parent=None):
        super().__init__(parent)
        self.group, self.status, self.settings = group, status, settings
        self.server = LocalServer(self)
        self.local_path: str | None = None     # the local model file last loaded
        self.status_label = named(QLabel(""), "serveStatusLabel", self.tr("Serving at"))
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setContentsMargins(8, 0, 8, 0)
        self.status_label.hide()
        status.addPermanentWidget(self.status_label)
        port = settings.backend.get("serve_port")
        if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
            group.port.setValue(port)
        group.toggled.connect(self._toggled)
        group.port.valueChanged.connect(lambda p: settings.backend.__setitem__("serve_port", int(p)))
        self.server.state_changed.connect(self._on_state)
        group.show_state("off", self.tr("Load a local model to serve it."))

    def model_changed(self, info) -> None:
        """A model was loaded or connected (a ModelInfo). The server serves a file: another local file
        stops it (turn it on again to serve the new one); connecting to a remote server does not."""
        if not info.capabilities.can_be_served:
            return
        new_path = info.path
        if self.server.path is not None and new_path != self.server.path:
            self.server.stop(reason=self.tr("Stopped serving {old}: the app's model changed. Turn it on again to "
                                            "serve {new}.").format(old=display_name(self.server.path),
                                                                   new=info.name))
        elif self.server.path is None and new_path:
            self.group.show_state("off", self.tr("Ready to serve {name}: tick the box to start.").format(
                name=info.name))
        self.local_path = new_path

    def _toggled(self, on: bool) -> None:
        if not on:
            self.server.stop()
        elif not self.local_path:
            self.group.show_state("error", self.tr("Load a local model first."))
        else:
            self.server.start(self.local_path, self.group.port.value())

    def _on_state(self, state: str, text: str, url: str) -> None:
        self.group.show_state(state, text, url)
        self.status_label.setVisible(state == "on")
        self.status_label.setText(self.tr("Serving at {url}").format(url=url) if url else "")
        self.status_label.setToolTip(self.tr("OpenAI-compatible API of this app's model (select to copy)"))
        if state == "error":
            self.status.showMessage(text, 8000)
        # (when on, the permanent label above already shows the URL: it is not repeated)

    def shutdown(self) -> None:
        self.server.stop(wait=True, announce=False)

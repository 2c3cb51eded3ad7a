"""Which model is loaded: the choice at startup, first-run download, loads the user asks for.

Only the path search runs in the GUI thread (it imports no torch); loading and downloading are
the worker's. A failed load leaves the previous model in use, and says so.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from chatgui.engine.default_model import find_default_model
from chatgui.store import AppSettings

from .notices import NoticeArea
from .options import LaunchOptions
from .settings_panel import SettingsPanel
from .status_bar import StatusBar
from .worker import EngineClient

FETCH_STAGES = {"download": "Downloading the default model (98 MB)…", "extract": "Unpacking the model…",
                "verify": "Checking the download…", "done": "Model downloaded."}


class ModelController(QObject):
    model_ready = Signal(object)   # the loaded model's info dict

    def __init__(self, engine: EngineClient, settings: AppSettings, options: LaunchOptions,
                 panel: SettingsPanel, status: StatusBar, notices: NoticeArea, parent=None):
        super().__init__(parent)
        self.engine, self.settings, self.options = engine, settings, options
        self.panel, self.status, self.notices = panel, status, notices
        self.loaded: dict | None = None
        self._remember_next = False
        worker = engine.worker
        worker.load_started.connect(self._on_load_started)
        worker.model_loaded.connect(self._on_loaded)
        worker.load_failed.connect(self._on_load_failed)
        worker.devices_found.connect(panel.set_available_devices)
        worker.fetch_progress.connect(self._on_fetch_progress)
        worker.fetch_finished.connect(self._on_fetch_finished)
        worker.fetch_failed.connect(self._on_fetch_failed)
        panel.load_model_requested.connect(lambda p, d, c: self.load(p, d, c, remember=True))
        panel.default_model_requested.connect(self.use_default_model)
        device = options.device or settings.device
        panel.set_model(options.model or settings.model_path, device, settings.context_length)

    # -- startup ---------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model given on the command line, else the saved one, else the default one;
        with none on this machine, offer to download it (or just do it, or don't)."""
        device = self.panel.device_choice()
        context = self.settings.context_length
        if self.options.model:
            self.load(self.options.model, device, context)
            return
        path = find_default_model(self.settings.model_path)
        if path is not None:
            self.load(str(path), device, context)
        elif self.options.fetch == "auto":
            self.fetch_default()
        else:
            self.offer_first_run()

    def offer_first_run(self) -> None:
        actions = [("Choose a .gguf file…", self.choose_file)]
        if self.options.fetch != "never":
            actions.insert(0, ("Download default model (98 MB)", self.fetch_default))
        self.notices.show_notice(
            "first-run", "No model yet. chatgui needs a language model to chat. Download the default model "
            "(SmolLM2-135M-Instruct, 98 MB, runs on any computer) or choose a .gguf file you already have.",
            "info", actions, closable=False)

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str, device: str | None = None, context_length: int | None = None,
             remember: bool = False) -> None:
        self._remember_next = remember
        self.panel.model_path.setText(path)
        self.engine.load(path, device or self.panel.device_choice(), context_length or 0)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.panel, "Choose a model", "", "GGUF models (*.gguf)")
        if path:
            self.load(path, remember=True)

    def use_default_model(self) -> None:
        path = find_default_model()
        if path is not None:
            self.load(str(path), remember=True)
        else:
            self.offer_first_run()

    def _on_load_started(self, path: str) -> None:
        self.status.show_progress(f"Loading model {Path(path).name}…")

    def _on_loaded(self, info: dict) -> None:
        self.loaded = info
        self.status.set_model(info["name"], info["device"], info["context_length"], info["path"])
        self.status.hide_progress(f"Model {Path(info['path']).stem} loaded.")
        for key in ("first-run", "load-error", "fetch", "fetch-error"):
            self.notices.remove(key)
        if self._remember_next and info.get("device") != "remote":   # a server is not a model file
            self.settings.model_path = info["path"]
            self.settings.device = self.panel.device_choice()
            self.settings.context_length = self.panel.context_length.value() or None
        self.model_ready.emit(info)

    def _on_load_failed(self, message: str) -> None:
        self.status.hide_progress("The model could not be loaded.")
        if self.loaded is not None:
            message += f" The previous model ({self.loaded['name']}) is still in use."
            if self.loaded.get("device") != "remote":
                self.panel.model_path.setText(self.loaded["path"])
            self.notices.show_notice("load-error", message, "error")
        else:
            actions = [("Choose a .gguf file…", self.choose_file)]
            if self.options.fetch != "never":
                actions.insert(0, ("Download default model (98 MB)", self.fetch_default))
            self.notices.show_notice("load-error", message, "error", actions)

    # -- first-run download ----------------------------------------------------------------
    def fetch_default(self) -> None:
        self.notices.remove("first-run")
        self.notices.remove("fetch-error")
        self.notices.show_notice("fetch", FETCH_STAGES["download"], "info", closable=False)
        self.status.show_progress(FETCH_STAGES["download"], None)
        self.engine.fetch_default_model()

    def _on_fetch_progress(self, stage: str, fraction: float) -> None:
        text = FETCH_STAGES.get(stage, stage)
        # pip reports no progress while downloading: show a busy bar, then real fractions.
        self.status.show_progress(text, None if stage == "download" else fraction)
        notice = self.notices.get("fetch")
        if notice is not None:
            notice.label.setText(text)

    def _on_fetch_finished(self, path: str) -> None:
        self.notices.remove("fetch")
        self.status.hide_progress(FETCH_STAGES["done"])
        self.load(path, remember=True)

    def _on_fetch_failed(self, message: str) -> None:
        self.status.hide_progress()
        self.notices.remove("fetch")
        self.notices.show_notice("fetch-error", f"The default model could not be downloaded: {message}", "error",
                                 [("Try again", self.fetch_default), ("Choose a .gguf file…", self.choose_file)])

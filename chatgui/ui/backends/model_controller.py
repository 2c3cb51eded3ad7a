"""Which model is loaded: the choice at startup, first-run download, loads the user asks for.

Only the path search runs in the GUI thread (it imports no torch); loading is the model
runner's job, the first-run download a download of the Models page's DownloadController (so the
runner stays free and the download shows MB, %, speed and time left, and can be cancelled).
A failed load leaves the previous model in use, and says so.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QT_TRANSLATE_NOOP, QObject, Signal
from PySide6.QtWidgets import QFileDialog

from chatgui.engine.archs import ARCHS
from chatgui.models.catalog import default_entry, get_entry
from chatgui.models.default_model import DEFAULT_MODEL_FILE, find_default_model
from chatgui.models.download import DownloadSpec
from chatgui.models.fit import FITS, NO_FIT, SLOW, UNKNOWN, entry_fit, recommended_model
from chatgui.models.suggest import SUGGESTED
from chatgui.common import paths
from chatgui.common.records import ModelInfo
from chatgui.store import AppSettings

from chatgui.ui.common.i18n import current_language

from chatgui.ui.common.notices import NoticeArea
from chatgui.ui.common.plain_errors import plain_load_error
from chatgui.ui.options import LaunchOptions
from chatgui.ui.settings.panel import SettingsPanel
from chatgui.ui.common.status_bar import StatusBar
from chatgui.ui.backends.engine_client import EngineClient
from chatgui.ui.models.download_controller import DownloadController
from chatgui.ui.models.download_row import progress_text

FETCH_STAGES = {"download": QT_TRANSLATE_NOOP("ModelController", "Downloading the default model (98 MB)…"),
                "done": QT_TRANSLATE_NOOP("ModelController", "Model downloaded.")}
# Once shown (in a translated interface), the note that the default model mostly speaks English
# is not shown again: this file in the config folder remembers it.
LANGUAGE_NOTE_MARKER = "default-model-language-note-shown"
FIT_LABELS = {FITS: QT_TRANSLATE_NOOP("ModelController", "fits this computer"),
              SLOW: QT_TRANSLATE_NOOP("ModelController", "may be slow on this computer"),
              NO_FIT: QT_TRANSLATE_NOOP("ModelController", "too big for this computer"),
              UNKNOWN: QT_TRANSLATE_NOOP("ModelController", "fit unknown")}


class ModelController(QObject):
    model_ready = Signal(object)   # the loaded model's ModelInfo
    waiting_changed = Signal()     # a download, load or connection began or ended (see send_blocked_reason)

    def __init__(self, engine: EngineClient, settings: AppSettings, options: LaunchOptions,
                 panel: SettingsPanel, status: StatusBar, notices: NoticeArea, downloads: DownloadController,
                 parent=None):
        super().__init__(parent)
        self.engine, self.settings, self.options, self.downloads = engine, settings, options, downloads
        self._fetch = DownloadSpec.from_entry(default_entry())
        self.panel, self.status, self.notices = panel, status, notices
        self.loaded: ModelInfo | None = None
        # "fetch", "load" or "connect" while one is under way; "load" until start() has chosen.
        self.waiting: str | None = "load"
        self._remember_next = False
        worker = engine.worker
        worker.load_started.connect(self._on_load_started)
        worker.model_loaded.connect(self._on_loaded)
        worker.load_failed.connect(self._on_load_failed)
        worker.devices_found.connect(panel.set_available_devices)
        downloads.progress.connect(self._on_fetch_progress)
        downloads.finished.connect(self._on_fetch_finished)
        downloads.failed.connect(self._on_fetch_failed)
        downloads.cancelled.connect(self._on_fetch_cancelled)
        panel.load_model_requested.connect(lambda p, d, c: self.load(p, d, c, remember=True))
        panel.default_model_requested.connect(self.use_default_model)
        panel.clear_cache_requested.connect(self.clear_weight_cache)
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
            self.set_waiting(None)
            self.offer_first_run()

    def offer_first_run(self) -> None:
        context = self.settings.context_length or 4096
        # the best model that fits this computer (the default SmolLM2 when nothing bigger does)
        better = recommended_model(context, architectures=ARCHS)
        if better.default:
            better = get_entry(SUGGESTED)
        fit = entry_fit(better, context)
        self.notices.show_notice(
            "first-run", self.tr("No model yet. chatgui needs a language model to chat. Download the default model "
                                 "(SmolLM2-135M-Instruct, 98 MB, runs on any computer; it mostly speaks English) "
                                 "or choose a .gguf file you already have.") + "\n" +
            self.tr("For better answers: {name} ({size}, {fit}), under File > Models…").format(
                name=better.name, size=f"{better.size / 1e9:.2f} GB", fit=self.tr(FIT_LABELS[fit])),
            "info", self._model_actions(), closable=False)

    def _model_actions(self) -> list:
        actions = [(self.tr("Choose a .gguf file…"), self.choose_file)]
        if self.options.fetch != "never":
            actions.insert(0, (self.tr("Download default model (98 MB)"), self.fetch_default))
        return actions

    # -- can a message be sent? ------------------------------------------------------------
    def set_waiting(self, what: str | None) -> None:
        """What is under way: "fetch", "load", "connect" or None."""
        if what != self.waiting:
            self.waiting = what
            self.waiting_changed.emit()

    def send_blocked_reason(self) -> str:
        """Why a message cannot be sent now ("" if it can): only while the first model is still
        on its way (a message sent then would reach the worker before any model). With a model
        loaded, a new load only delays the reply."""
        if self.loaded is not None or self.waiting is None:
            return ""
        if self.waiting == "fetch":
            return self.tr("The model is still downloading. You can send once it has loaded.")
        if self.waiting == "connect":
            return self.tr("Still connecting to the server…")
        return self.tr("The model is still loading…")

    def check_ready(self) -> bool:
        """True if a reply can be asked for; else say why (status bar, or a notice when there is
        no model at all) and the caller keeps the message where it is."""
        if self.loaded is not None:
            return True
        reason = self.send_blocked_reason()
        if reason:
            self.status.showMessage(reason, 5000)
        elif any(self.notices.get(key) for key in ("first-run", "load-error", "fetch-error")):
            # That notice already offers a model: do not stack a second one on it.
            self.status.showMessage(self.tr("No model is loaded yet: choose one above. Your message stays in "
                                            "the box."), 6000)
        else:
            self.notices.show_notice("no-model", self.tr("No model is loaded yet, so nothing can answer. Download "
                                                         "the default model or choose a .gguf file; your message "
                                                         "stays in the box."), "warning", self._model_actions())
        return False

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str, device: str | None = None, context_length: int | None = None,
             remember: bool = False) -> None:
        self._remember_next = remember
        self.panel.show_model_path(path)
        self.set_waiting("load")
        self.engine.load(path, device or self.panel.device_choice(), context_length or 0)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.panel, self.tr("Choose a model"), "",
                                              self.tr("GGUF models (*.gguf)"))
        if path:
            self.load(path, remember=True)

    def use_default_model(self) -> None:
        path = find_default_model()
        if path is not None:
            self.load(str(path), remember=True)
        else:
            self.offer_first_run()

    def _on_load_started(self, path: str) -> None:
        self.set_waiting("load")
        self.notices.remove("no-model")   # a model is on its way
        self.status.show_progress(self.tr("Loading model {name}…").format(name=Path(path).name))

    def show_cache_size(self) -> None:
        # (after a model has loaded: weight_cache imports numpy, which the window's start need not wait for)
        from chatgui.engine.weight_cache import cache_size_bytes
        try:
            self.panel.show_cache_size(cache_size_bytes())
        except OSError:
            self.panel.show_cache_size(0)

    def clear_weight_cache(self) -> None:
        from chatgui.engine.weight_cache import clear_cache
        try:
            freed = clear_cache()
        except OSError as e:
            self.status.showMessage(self.tr("The weight cache could not be cleared: {error}").format(
                error=e.strerror or e), 8000)
        else:
            self.status.showMessage(self.tr("Weight cache cleared ({size} MB freed); models load from their files "
                                            "next time.").format(size=f"{freed / 1e6:,.0f}"), 8000)
        self.show_cache_size()

    def _on_loaded(self, info: ModelInfo) -> None:
        self.loaded = info
        self.show_cache_size()   # a first load writes the cache (in the background: shown at the next load)
        self.status.set_model(info)
        self.status.hide_progress(self.tr("Model {name} loaded.").format(name=info.name))
        for key in ("first-run", "load-error", "fetch", "fetch-error", "no-model", "model-warnings"):
            self.notices.remove(key)
        self.set_waiting(None)
        self._note_model_language(info)
        if info.warnings:
            self.notices.show_notice("model-warnings", self.tr("{name} loaded, with a warning: {warnings}").format(
                name=info.name, warnings=" ".join(info.warnings)), "warning")
        if self._remember_next and info.is_local:   # a server is not a model file
            self.settings.model_path = info.path
            self.settings.device = self.panel.device_choice()
            self.settings.context_length = self.panel.context_length_choice()
        self.model_ready.emit(info)

    def _on_load_failed(self, message: str) -> None:
        technical, message = message, plain_load_error(message)
        self.set_waiting(None)
        self.status.hide_progress(self.tr("The model could not be loaded."))
        if self.loaded is not None:
            message = self.tr("{message} The previous model ({name}) is still in use.").format(
                message=message, name=self.loaded.name)
            if self.loaded.is_local:
                self.panel.show_model_path(self.loaded.path)
            notice = self.notices.show_notice("load-error", message, "error")
        else:
            notice = self.notices.show_notice("load-error", message, "error", self._model_actions())
        notice.setToolTip(technical)   # the exact reason, for a bug report

    def _note_model_language(self, info: ModelInfo) -> None:
        """In a translated interface, say once that the default model mostly speaks English."""
        if current_language() == "en" or Path(info.path).name != DEFAULT_MODEL_FILE:
            return
        marker = paths.config_dir() / LANGUAGE_NOTE_MARKER
        if marker.exists():
            return
        try:
            marker.write_text("1\n", encoding="utf-8")
        except OSError:
            pass   # then it is said again next time
        self.notices.show_notice("model-language", self.tr(
            "The default model mostly speaks English: its answers in other languages are often poor. To chat in "
            "your language, choose a model that speaks it (a .gguf file) in the settings panel."), "info")

    # -- first-run download ----------------------------------------------------------------
    def fetch_default(self) -> None:
        self.notices.remove("first-run")
        self.notices.remove("no-model")
        self.notices.remove("fetch-error")
        self.notices.show_notice("fetch", self.tr(FETCH_STAGES["download"]), "info",
                                 [(self.tr("Cancel"), lambda: self.downloads.cancel(self._fetch))], closable=False)
        self.status.show_progress(self.tr(FETCH_STAGES["download"]), None)
        self.set_waiting("fetch")
        self.downloads.start(self._fetch)

    def _on_fetch_progress(self, key: str, progress) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return   # another download of the Models page
        text = self.tr(FETCH_STAGES["download"]) + " " + progress_text(progress)
        self.status.show_progress(text, progress.fraction)
        self.notices.set_text("fetch", text)

    def _on_fetch_finished(self, key: str, path: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.notices.remove("fetch")
        self.status.hide_progress(self.tr(FETCH_STAGES["done"]))
        self.load(path, remember=True)

    def _on_fetch_cancelled(self, key: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.set_waiting(None)
        self.status.hide_progress()
        self.notices.remove("fetch")
        self.offer_first_run()

    def _on_fetch_failed(self, key: str, message: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.set_waiting(None)
        self.status.hide_progress()
        self.notices.remove("fetch")
        self.notices.show_notice("fetch-error", self.tr("The default model could not be downloaded: {error}").format(
            error=message), "error", [(self.tr("Try again"), self.fetch_default),
                                      (self.tr("Choose a .gguf file…"), self.choose_file)])

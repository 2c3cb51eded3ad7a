"""Which model is loaded: the choice at startup, first-run download, loads the user asks for; what
the model pill and the welcome card show.

Only the path search runs in the GUI thread (it imports no torch); loading is the model
runner's job, the first-run download a download of the Models page's DownloadController (so the
runner stays free and the download shows MB, %, speed and time left, and can be cancelled).
A failed load leaves the previous model in use, and says so. A saved model that is gone (or does
not load) at startup gives way to another installed one without a question; with none at all,
the welcome card offers the model recommended for this computer.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QT_TRANSLATE_NOOP, QObject, Signal
from PySide6.QtWidgets import QFileDialog

from chatgui.engine.archs import ARCHS
from chatgui.models.catalog import default_entry
from chatgui.models.default_model import DEFAULT_MODEL_FILE, find_default_model
from chatgui.models.download import DownloadSpec
from chatgui.models.fit import FITS, NO_FIT, SLOW, UNKNOWN, entry_fit
from chatgui.models.naming import display_name
from chatgui.models.suggest import recommended_entry
from chatgui.common import paths
from chatgui.common.records import ModelInfo
from chatgui.store import AppSettings

from chatgui.ui.common.i18n import current_language

from chatgui.ui.common.notices import NoticeArea
from chatgui.ui.common.plain_errors import plain_load_error, plain_download_error
from chatgui.ui.options import LaunchOptions
from chatgui.ui.settings.panel import SettingsPanel
from chatgui.ui.common.status_bar import StatusBar
from chatgui.ui.backends.engine_client import EngineClient
from chatgui.ui.models.download_controller import DownloadController
from chatgui.ui.models.download_row import progress_text
from chatgui.ui.models.welcome_card import WelcomeCard
from chatgui.ui.backends.model_pill import ModelPill
# Once shown (in a translated interface), the note that the default model mostly speaks English
# is not shown again: this file in the config folder remembers it.
LANGUAGE_NOTE_MARKER = "default-model-language-note-shown"
FIT_LABELS = {FITS: QT_TRANSLATE_NOOP("ModelController", "fits this computer"),
              SLOW: QT_TRANSLATE_NOOP("ModelController", "may be slow on this computer"),
              NO_FIT: QT_TRANSLATE_NOOP("ModelController", "too big for this computer"),
              UNKNOWN: QT_TRANSLATE_NOOP("ModelController", "fit unknown")}


def installed_models() -> list:
    """The chat models on this computer (chatgui.models.library), best first: catalog chat models,
    larger (better answers) first, then other files, base models last."""
    from chatgui.models.library import installed_models as on_this_computer

    def rank(m):
        entry = m.entry
        kind = 0 if entry is not None and entry.is_chat else 2 if entry is not None else 1
        return kind, -m.size
    # (embedding models are for Knowledge: never offered, loaded or fallen back to as a chat model)
    return sorted((m for m in on_this_computer() if m.entry is None or not m.entry.is_embedding), key=rank)


# What the welcome card may recommend: the architectures the engine runs, less the Mixture-of-Experts
# ones, which still decode below llama.cpp's speed (benchmarks/bench_moe.py), so a first download
# is never a model too slow to chat with.
RUNS_WELL = frozenset(name for name, arch in ARCHS.items() if not arch.moe)

class ModelController(QObject):
    model_ready = Signal(object)   # the loaded model's ModelInfo
    waiting_changed = Signal()     # a download, load or connection began or ended (see send_blocked_reason)
    welcome_changed = Signal(bool)   # the welcome card is to be shown (no model can answer) or hidden
    models_requested = Signal()    # the Models page
    server_requested = Signal()    # the settings panel's server section

    def __init__(self, engine: EngineClient, settings: AppSettings, options: LaunchOptions,
                 panel: SettingsPanel, status: StatusBar, notices: NoticeArea, downloads: DownloadController,
                 parent=None, *, pill: ModelPill, card: WelcomeCard):
        super().__init__(parent)
        self.engine, self.settings, self.options, self.downloads = engine, settings, options, downloads
        self._fetch_entry = default_entry()   # what the welcome card downloads (the recommended model)
        self._fetch = DownloadSpec.from_entry(self._fetch_entry)
        self.panel, self.status, self.notices, self.pill, self.card = panel, status, notices, pill, card
        self.loaded: ModelInfo | None = None
        # "fetch", "load" or "connect" while one is under way; "load" until start() has chosen.
        self.waiting: str | None = "load"
        self.welcome_shown = False
        self._remember_next = False
        self._loading_path = ""
        self._fallbacks: list[str] = []   # at startup: installed models to try if the chosen one fails
        pill.installed = lambda: [(m.name, str(m.path)) for m in installed_models()]
        pill.model_chosen.connect(lambda path: self.load(path, remember=True))
        pill.file_requested.connect(self.choose_file)
        pill.models_requested.connect(self.models_requested)
        card.download_clicked.connect(lambda: self.fetch(self._fetch_entry))
        card.cancel_clicked.connect(lambda: self.downloads.cancel(self._fetch))
        card.file_clicked.connect(self.choose_file)
        card.models_clicked.connect(self.models_requested)
        card.server_clicked.connect(self.server_requested)
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
        """Load the model given on the command line, else the saved one, else the default one,
        else another installed one (the saved file is gone: no question asked); with none on this
        machine, the welcome card offers one (or it is downloaded at once, with --fetch)."""
        device = self.panel.device_choice()
        context = self.settings.context_length
        if self.options.model:
            self.load(self.options.model, device, context)
            return
        found = find_default_model(self.settings.model_path)
        candidates = [str(found)] if found is not None else []
        candidates += [str(m.path) for m in installed_models() if str(m.path) not in candidates]
        if candidates:
            first, self._fallbacks = candidates[0], candidates[1:]
            # a model other than the saved one becomes the saved one
            replaced = bool(self.settings.model_path) and first != self.settings.model_path
            self.load(first, device, context, remember=replaced)
        elif self.options.fetch == "auto":
            self.fetch_default()
        else:
            self.set_waiting(None)
            self.offer_first_run()

    def offer_first_run(self) -> None:
        """The welcome card, with the model recommended for this computer."""
        context = self.settings.context_length or 4096
        entry = recommended_entry(context, architectures=RUNS_WELL)
        self._fetch_entry = entry
        self.card.show_offer(entry, self.tr(FIT_LABELS[entry_fit(entry, context)]), self.options.fetch != "never")
        self._update_welcome()

    # -- can a message be sent? ------------------------------------------------------------
    def set_waiting(self, what: str | None) -> None:
        """What is under way: "fetch", "load", "connect" or None."""
        if what != self.waiting:
            self.waiting = what
            if what == "connect" and self.loaded is None:
                self.pill.show_loading(self.tr("Connecting…"))
            elif what is None and self.loaded is None and self.pill.state == "loading":
                self.pill.show_none()
            self.waiting_changed.emit()
        self._update_welcome()

    def _update_welcome(self) -> None:
        """The card stands in for the conversation while no model can answer and none is on its
        way but a download (whose progress it shows)."""
        shown = self.loaded is None and self.waiting in (None, "fetch")
        if shown != self.welcome_shown:
            self.welcome_shown = shown
            self.welcome_changed.emit(shown)

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
        else:   # the welcome card is on screen and offers a model: no notice on top of it
            self.status.showMessage(self.tr("No model is loaded yet: download one or choose a file above. Your "
                                            "message stays in the box."), 6000)
        return False

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str, device: str | None = None, context_length: int | None = None,
             remember: bool = False) -> None:
        self._remember_next = remember
        self._loading_path = path
        self.panel.show_model_path(path)
        self.pill.show_loading(self.tr("Loading {name}…").format(name=display_name(path)))
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
            self.fetch_default()

    def _on_load_started(self, path: str) -> None:
        self._loading_path = path
        self.set_waiting("load")
        self.notices.remove("no-model")   # a model is on its way
        text = self.tr("Loading {name}…").format(name=display_name(path))
        self.pill.show_loading(text)
        self.status.show_progress(text)

    def model_removed(self, path: str) -> None:
        """A model was deleted on the Models page: the one in use gives way to another installed
        one (the Models page said so before deleting it)."""
        loaded = self.loaded
        self.panel.set_installed_models([(m.name, str(m.path)) for m in installed_models()])
        if loaded is None or not loaded.is_local or Path(loaded.path) != Path(path):
            return
        other = self.successor(path)
        if other is not None:
            self.load(other, remember=True)
        else:
            self.status.showMessage(self.tr("{name} was deleted; it answers until chatgui is closed.").format(
                name=loaded.name), 10000)

    def successor(self, path: str) -> str | None:
        """The installed model that takes over when `path` is deleted (None: there is no other)."""
        return next((str(m.path) for m in installed_models() if Path(m.path) != Path(path)), None)

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
        self._fallbacks = []
        self.pill.show_ready(info.name, info.path, remote=not info.is_local)
        self.show_cache_size()   # a first load writes the cache (in the background: shown at the next load)
        self.status.set_model(info)
        self.status.hide_progress(self.tr("Model {name} loaded.").format(name=info.name))
        for key in ("load-error", "fetch-error", "no-model", "model-warnings"):
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
        failed = self._loading_path
        self.status.hide_progress(self.tr("The model could not be loaded."))
        # The picker lists what is installed and the model in use, not a file that failed.
        self.panel.set_installed_models([(m.name, str(m.path)) for m in installed_models()])
        self.panel.show_model_path(self.loaded.path if self.loaded is not None and self.loaded.is_local else "")
        if self.loaded is None and self._fallbacks:   # at startup: the next installed model
            following = self._fallbacks.pop(0)
            notice = self.notices.show_notice("load-fallback", self.tr("{message} Using {name} instead.").format(
                message=message, name=display_name(following)), "warning")
            notice.setToolTip(technical)
            self.load(following, remember=True)
            return
        if self.loaded is not None:
            self.set_waiting(None)
            message = self.tr("{message} The previous model ({name}) is still in use.").format(
                message=message, name=self.loaded.name)
            self.pill.show_ready(self.loaded.name, self.loaded.path, remote=not self.loaded.is_local)
        else:
            self.pill.show_failed(display_name(failed) if failed else self.tr("The model"), message)
            self.set_waiting(None)
            self.offer_first_run()
        notice = self.notices.show_notice("load-error", message, "error")
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

    # -- the welcome card's download ----------------------------------------------------------
    def fetch_default(self) -> None:
        self.fetch(default_entry())

    def fetch(self, entry) -> None:
        """Download a catalog model (the progress in the welcome card and the pill), then load it."""
        self.notices.remove("no-model")
        self.notices.remove("fetch-error")
        self._fetch_entry, self._fetch = entry, DownloadSpec.from_entry(entry)
        text = self._fetch_text()
        self.card.show_offer(entry, self.tr(FIT_LABELS[entry_fit(entry, self.settings.context_length or 4096)]),
                             self.options.fetch != "never")
        self.card.show_progress(text, None)
        self.pill.show_loading(text)
        self.status.show_progress(text, None)
        self.set_waiting("fetch")
        self.downloads.start(self._fetch)

    def _fetch_text(self) -> str:
        return self.tr("Downloading {name}…").format(name=self._fetch_entry.name)

    def _on_fetch_progress(self, key: str, progress) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return   # another download of the Models page
        text = progress_text(progress)
        self.status.show_progress(self._fetch_text() + " " + text, progress.fraction)
        self.card.show_progress(text, progress.fraction)
        self.pill.show_loading(self._fetch_text(), progress.fraction)

    def _on_fetch_finished(self, key: str, path: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.status.hide_progress(self.tr("Model downloaded."))
        self.load(path, remember=True)

    def _on_fetch_cancelled(self, key: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.status.hide_progress()
        self.set_waiting(None)
        self.offer_first_run()

    def _on_fetch_failed(self, key: str, message: str) -> None:
        if key != self._fetch.key or self.waiting != "fetch":
            return
        self.status.hide_progress()
        self.set_waiting(None)
        self.card.show_error(self.tr("{name} could not be downloaded: {error}").format(
            name=self._fetch_entry.name, error=plain_download_error(message)))
        self.card.error.setToolTip(message)   # the exact reason, for a bug report

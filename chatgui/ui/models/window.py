"""The Models page in a window of its own, opened from File > Models… (Ctrl+M) or the
"Models…" button beside the model picker. Downloads belong to the main window (they go on
while this window is closed) and are paused when the app quits, to be resumed later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtWidgets import QDialog, QVBoxLayout

from chatgui.models.catalog import load_catalog
from chatgui.ui.common.i18n import translate
from chatgui.ui.settings.panel import installed_models   # (display name, path), as the picker lists them

from .download_controller import DownloadController
from .page import ModelsPage


class ModelsWindow(QDialog):
    def __init__(self, downloads: DownloadController, load_model: Callable[[str], None], context_length: int,
                 parent=None, folders: dict | None = None):
        super().__init__(parent)
        self.setObjectName("modelsWindow")
        self.setWindowTitle(self.tr("Models"))
        self.page = ModelsPage(load_model=self._load_and_close(load_model), catalog=load_catalog(),
                               downloads=downloads, context_length=context_length, folders=folders)
        QVBoxLayout(self).addWidget(self.page)
        self.resize(760, 640)

    def _load_and_close(self, load_model: Callable[[str], None]) -> Callable[[str], None]:
        def load(path: str) -> None:
            load_model(path)
            self.close()   # back to the conversation, where the model is loading
        return load


class ModelsFeature:
    """What the main window holds: the downloads, the window (made on first use), and keeping
    the settings' model picker in step with what is installed."""

    def __init__(self, main_window, load_model: Callable[[str], None], installed_changed: Callable[[list], None]):
        self.main_window = main_window
        self.load_model = load_model
        self.installed_changed = installed_changed
        self.downloads = DownloadController(parent=main_window)
        self.downloads.finished.connect(lambda _key, _path: self.refresh_installed())
        self.window: ModelsWindow | None = None
        self.in_use: str | None = None   # the loaded model's file ("In use" on the page)
        # Set by the main window: the installed model that would take over from a path, and what
        # to do once a model was deleted.
        self.successor: Callable[[str], str | None] = lambda _path: None
        self.removed: Callable[[str], None] = lambda _path: None

    def set_in_use(self, path: str | None) -> None:
        self.in_use = path
        if self.window is not None:
            self.window.page.set_in_use(path)

    def open(self, context_length: int) -> ModelsWindow:
        if self.window is None:
            self.window = ModelsWindow(self.downloads, self.load_model, context_length, self.main_window,
                                       folders=self.main_window.settings.folders)
            self.window.finished.connect(lambda _result: self.refresh_installed())   # deleted or added by hand
            self.window.page.in_use_note = self.in_use_note
            self.window.page.removed.connect(self.removed)
        self.window.page.set_in_use(self.in_use)   # (refreshes the page)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        return self.window

    def in_use_note(self, path) -> str:
        """Said before deleting `path` when it is the model in use: which model takes over."""
        in_use = self.in_use
        if not in_use or Path(in_use) != Path(path):
            return ""
        from chatgui.models.naming import display_name
        following = self.successor(str(path))
        if following is None:
            return translate("ModelsFeature", "It is the model in use: it answers until chatgui is closed, and "
                                              "then there is no model left.")
        return translate("ModelsFeature", "It is the model in use: chatgui will switch to {name}.").format(
            name=display_name(following))

    def refresh_installed(self) -> None:
        self.installed_changed(installed_models())

    def shutdown(self) -> None:
        """Pause every running download (its partial file stays for the next start)."""
        for key in self.downloads.running_keys():
            self.downloads.pause(key)

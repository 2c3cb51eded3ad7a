"""The Models page: catalog cards, downloads, and the models already on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMessageBox, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from chatgui.models.catalog import CatalogEntry
from chatgui.models.download import DownloadSpec
from chatgui.models.fit import Memory, entry_fit
from chatgui.models.library import installed_models, installed_path, remove

from .card import ModelCard, human_size
from .download_controller import DownloadController
from .download_row import DownloadRow


class InstalledRow(QWidget):
    """A model on this machine that is not in the catalog (added by hand or from a URL)."""

    def __init__(self, name: str, path: Path, size: int, in_place: bool, parent=None):
        super().__init__(parent)
        self.path = path
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        where = self.tr("used where it is") if in_place else self.tr("in the models folder")
        self.label = QLabel(f"{name} · {human_size(size)} · {where}")
        self.label.setToolTip(str(path))
        row.addWidget(self.label, 1)
        self.load_button = QPushButton(self.tr("Load"))
        self.delete_button = QPushButton(self.tr("Forget…") if in_place else self.tr("Delete…"))
        self.show_button = QPushButton(self.tr("Show in folder"))
        for b in (self.load_button, self.delete_button, self.show_button):
            row.addWidget(b)


class ModelsPage(QWidget):
    removed = Signal(str)   # the path of a model deleted (or forgotten)

    def __init__(self, catalog: Sequence[CatalogEntry], downloads: DownloadController,
                 load_model: Callable[[str], None], context_length: int = 4096, memory: Memory | None = None,
                 parent=None):
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.catalog = list(catalog)
        self.downloads = downloads
        self.load_model = load_model
        self.context_length = context_length
        self.specs: dict[str, DownloadSpec] = {e.id: DownloadSpec.from_entry(e) for e in self.catalog}
        self.in_use_note: Callable[[Path], str] = lambda _path: ""   # set by ModelsFeature
        outer = QVBoxLayout(self)
        head = QHBoxLayout()
        title = QLabel(f"<h2>{self.tr('Models')}</h2>")
        head.addWidget(title, 1)
        self.add_button = QPushButton(self.tr("Add a .gguf file…"))
        self.url_button = QPushButton(self.tr("Download from URL…"))
        head.addWidget(self.add_button)
        head.addWidget(self.url_button)
        outer.addLayout(head)
        self.message = QLabel()
        self.message.setObjectName("modelsMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        outer.addWidget(self.message)
        note = QLabel(self.tr("Fit labels are for a {0}-token context on this machine.").format(context_length))
        note.setObjectName("fitNote")
        outer.addWidget(note)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        self.body = QVBoxLayout(body)
        self.cards: dict[str, ModelCard] = {}
        for e in self.catalog:
            card = ModelCard(e, entry_fit(e, context_length, memory))
            self._wire_card(card)
            self.cards[e.id] = card
            self.body.addWidget(card)
        self.url_rows: dict[str, DownloadRow] = {}
        self.url_box = QVBoxLayout()
        self.body.addLayout(self.url_box)
        self.others_title = QLabel(f"<b>{self.tr('Other models on this machine')}</b>")
        self.body.addWidget(self.others_title)
        self.others_box = QVBoxLayout()
        self.body.addLayout(self.others_box)
        self.body.addStretch(1)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        self.add_button.clicked.connect(self.add_gguf_file)
        self.url_button.clicked.connect(self.download_from_url)
        downloads.progress.connect(self._on_progress)
        downloads.finished.connect(self._on_finished)
        downloads.paused.connect(self._on_paused)
        downloads.cancelled.connect(self._on_cancelled)
        downloads.failed.connect(self._on_failed)
        self.refresh()

    # -- questions to the user (tests replace these) ---------------------------------------------
    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes

    def ask_gguf_file(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Add a .gguf file"), "", self.tr("GGUF models (*.gguf)"))
        return path or None

    def ask_copy(self, path: str) -> bool | None:
        """True: copy into the models folder; False: use it where it is; None: cancelled."""
        box = QMessageBox(QMessageBox.Icon.Question, self.tr("Add a .gguf file"),
                          self.tr("Copy {0} into the models folder, or use it where it is?").format(Path(path).name),
                          parent=self)
        copy = box.addButton(self.tr("Copy"), QMessageBox.ButtonRole.AcceptRole)
        in_place = box.addButton(self.tr("Use in place"), QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return True if box.clickedButton() is copy else False if box.clickedButton() is in_place else None

    def ask_url(self) -> str | None:
        url, ok = QInputDialog.getText(self, self.tr("Download from URL"), self.tr("Address of a .gguf file:"))
        return url.strip() if ok and url.strip() else None

    def open_folder(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    # -- state ---------------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #b91c1c;" if error else "")
        self.message.setVisible(bool(text))

    def refresh(self) -> None:
        folder = self.downloads.folder
        for e in self.catalog:
            card, spec = self.cards[e.id], self.specs[e.id]
            path = installed_path(e, folder)
            if path is not None:
                card.show_installed(path.stat().st_size)
            elif self.downloads.is_running(e.id):
                card.show_downloading()
            elif self.downloads.partial_bytes(spec):
                card.show_paused(self.downloads.partial_bytes(spec))   # kept from an earlier session
            else:
                card.show_not_installed()
        self._refresh_others(folder)

    def _refresh_others(self, folder: Path) -> None:
        while self.others_box.count():
            w = self.others_box.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        others = [m for m in installed_models(folder) if m.entry is None]
        self.others_title.setVisible(bool(others))
        for m in others:
            row = InstalledRow(m.name, m.path, m.size, m.in_place)
            row.load_button.clicked.connect(lambda _=False, p=m.path: self.load_model(str(p)))
            row.delete_button.clicked.connect(lambda _=False, m=m: self._delete(m.path, m.name, m.in_place))
            row.show_button.clicked.connect(lambda _=False, p=m.path: self.open_folder(p.parent))
            self.others_box.addWidget(row)

    def _wire_card(self, card: ModelCard) -> None:
        key = card.entry.id
        card.download_clicked.connect(lambda: self.start(key))
        card.row.resume_clicked.connect(lambda: self.start(key))
        card.row.pause_clicked.connect(lambda: self.downloads.pause(key))
        card.row.cancel_clicked.connect(lambda: self.downloads.cancel(self.specs[key]))
        card.load_clicked.connect(lambda: self.load_model(str(self.downloads.folder / card.entry.file)))
        card.delete_clicked.connect(lambda: self._delete(self.downloads.folder / card.entry.file, card.entry.name))
        card.show_clicked.connect(lambda: self.open_folder(self.downloads.folder))

    # -- actions -------------------------------------------------------------------------------------
    def start(self, key: str) -> None:
        self.say("")
        self.downloads.start(self.specs[key])
        if key in self.cards:
            self.cards[key].show_downloading()
            self.cards[key].row.label.setText(self.tr("Starting…"))

    def _delete(self, path: Path, name: str, in_place: bool = False) -> None:
        if in_place:
            text = self.tr("Forget {0}? The file stays where it is: {1}").format(name, path)
        else:
            text = self.tr("Delete {0} ({1})? It will have to be downloaded again to be used.").format(name, path)
        note = self.in_use_note(path)   # the model in use: which one takes over
        if not self.confirm(self.tr("Delete model"), f"{text}\n\n{note}" if note else text):
            return
        try:
            remove(path, self.downloads.folder)
        except Exception as e:             # a file in use on Windows, a read-only folder...
            self.say(str(e), error=True)
        else:
            self.removed.emit(str(path))
        self.refresh()

    def add_gguf_file(self) -> None:
        path = self.ask_gguf_file()
        if not path:
            return
        copy = self.ask_copy(path)
        if copy is None:
            return
        self.say(self.tr("Copying {0}…").format(Path(path).name) if copy else "")
        self.downloads.add_file(path, copy)

    def download_from_url(self) -> None:
        url = self.ask_url()
        if not url:
            return
        if not url.lower().startswith(("http://", "https://")):
            self.say(self.tr("Only http:// and https:// addresses can be downloaded."), error=True)
            return
        spec = DownloadSpec.from_url(url)
        self.specs[spec.key] = spec
        row = self.url_rows.get(spec.key)
        if row is None:
            row = self.url_rows[spec.key] = DownloadRow()
            row.setObjectName(f"urlRow-{spec.key}")
            row.pause_clicked.connect(lambda: self.downloads.pause(spec.key))
            row.resume_clicked.connect(lambda: self.start(spec.key))
            row.cancel_clicked.connect(lambda: self.downloads.cancel(self.specs[spec.key]))
            self.url_box.addWidget(row)
        row.show()
        self.start(spec.key)

    # -- download events (GUI thread) -----------------------------------------------------------------
    def _row(self, key: str) -> DownloadRow | None:
        if key in self.cards:
            return self.cards[key].row
        return self.url_rows.get(key)

    def _on_progress(self, key: str, p) -> None:
        if key in self.cards:
            self.cards[key].show_downloading()
        row = self._row(key)
        if row is not None:
            row.show_progress(p)

    def _on_finished(self, key: str, path: str) -> None:
        if key in self.url_rows:
            self.url_rows.pop(key).deleteLater()
        self.say(self.tr("{0} is ready.").format(Path(path).name))
        self.refresh()

    def _on_paused(self, key: str) -> None:
        spec = self.specs.get(key)
        row = self._row(key)
        if spec is not None and row is not None:
            row.show_paused(self.downloads.partial_bytes(spec), spec.size)

    def _on_cancelled(self, key: str) -> None:
        if key in self.url_rows:
            self.url_rows.pop(key).deleteLater()
        self.refresh()

    def _on_failed(self, key: str, message: str) -> None:
        self.say(message, error=True)
        if key in self.cards:
            self.refresh()
            if not self.downloads.partial_bytes(self.specs[key]):
                self.cards[key].show_not_installed(self.tr("Download failed"))
        elif key in self.url_rows:
            spec = self.specs[key]
            self.url_rows[key].show_paused(self.downloads.partial_bytes(spec), spec.size)
        else:
            self.refresh()

"""The Models page: catalog cards, downloads, and the models already on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from chatgui.models.catalog import CatalogEntry
from chatgui.models.download import DownloadSpec
from chatgui.models.fit import Memory, entry_fit
from chatgui.models.errors import ModelFetchError
from chatgui.models.library import check_gguf, installed_models, installed_path, remove
from chatgui.ui.common.confirm import ask
from chatgui.ui.common.file_dialogs import remember_folder, start_folder
from chatgui.ui.common.plain_errors import plain_download_error

from .card import ModelCard, human_size, in_use_badge
from .download_controller import DownloadController
from .download_row import DownloadRow, mb


URL_DIALOG_WIDTH = 640


def _same_file(path: Path, other: str | None) -> bool:
    if not other:
        return False
    try:
        return Path(path).resolve() == Path(other).resolve()
    except OSError:
        return False


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
        self.in_use_label = in_use_badge()
        for b in (self.in_use_label, self.load_button, self.delete_button, self.show_button):
            row.addWidget(b)

    def set_in_use(self, in_use: bool) -> None:
        self.in_use_label.setVisible(in_use)
        self.load_button.setVisible(not in_use)


class ModelsPage(QWidget):
    removed = Signal(str)   # the path of a model deleted (or forgotten)

    def __init__(self, catalog: Sequence[CatalogEntry], downloads: DownloadController,
                 load_model: Callable[[str], None], context_length: int = 4096, memory: Memory | None = None,
                 parent=None, folders: dict | None = None):
        """folders: where file dialogs opened last (the settings' dict, updated here)."""
        super().__init__(parent)
        self.setObjectName("modelsPage")
        self.folders = folders if folders is not None else {}
        self.catalog = list(catalog)
        self.downloads = downloads
        self.load_model = load_model
        self.context_length = context_length
        self.specs: dict[str, DownloadSpec] = {e.id: DownloadSpec.from_entry(e) for e in self.catalog}
        self.in_use: str | None = None   # the loaded model's path
        self.in_use_note: Callable[[Path], str] = lambda _path: ""   # set by ModelsFeature
        outer = QVBoxLayout(self)
        head = QHBoxLayout()
        title_text = self.tr("Models")   # (lupdate does not see a tr() inside an f-string)
        title = QLabel(f"<h2>{title_text}</h2>")
        title.setObjectName("modelsTitle")
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
        # Its room is kept (two lines) while it is empty: a line appearing would move the cards
        # under the pointer.
        self.message.setMinimumHeight(2 * self.message.fontMetrics().lineSpacing())
        self.message.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
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
        others_text = self.tr("Other models on this machine")
        self.others_title = QLabel(f"<b>{others_text}</b>")
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
    def confirm(self, title: str, text: str, primary: str) -> bool:
        """Deleting (or forgetting) a model: asked in the styled dialog, the primary button in red."""
        return ask(self, title, text, primary, destructive=True) == "primary"

    def ask_gguf_file(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Add a .gguf file"),
                                              start_folder(self.folders, "add_model"), self.tr("GGUF models (*.gguf)"))
        if path:
            remember_folder(self.folders, "add_model", path)
        return path or None

    def ask_copy(self, path: str) -> bool | None:
        """True: copy into the models folder; False: use it where it is; None: cancelled."""
        answer = ask(self, self.tr("Add a .gguf file"),
                     self.tr("Copy {0} into the models folder, or use it where it is?").format(Path(path).name),
                     self.tr("Copy"), other=self.tr("Use in place"))
        return True if answer == "primary" else False if answer == "other" else None

    def ask_cancel(self, name: str, done: int) -> str | None:
        """Cancel a download with `done` bytes already here: "discard" them, "pause" instead, or
        None: go on as before."""
        answer = ask(self, self.tr("Cancel the download?"),
                     self.tr("{0} of {1} are downloaded already. Delete them, or pause the download and "
                             "keep them for later?").format(mb(done), name),
                     self.tr("Pause instead"), self.tr("Keep downloading"),
                     other=self.tr("Delete the downloaded part"), other_destructive=True)
        return "discard" if answer == "other" else "pause" if answer == "primary" else None

    def url_dialog(self) -> QInputDialog:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(self.tr("Download from URL"))
        dialog.setLabelText(self.tr("Address of a .gguf file:"))
        # Addresses are long: room to see one whole.
        dialog.resize(max(dialog.sizeHint().width(), URL_DIALOG_WIDTH), dialog.sizeHint().height())
        return dialog

    def ask_url(self) -> str | None:
        dialog = self.url_dialog()
        ok = dialog.exec() == QInputDialog.DialogCode.Accepted
        url = dialog.textValue().strip()
        return url if ok and url else None

    def open_folder(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    # -- state ---------------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False, detail: str = "") -> None:
        """detail: the exact technical message, kept in the tooltip (plain words on the page)."""
        self.message.setText(text)
        self.message.setToolTip(detail if detail != text else "")
        self.message.setStyleSheet("color: #b91c1c;" if error else "")

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
            card.set_in_use(path is not None and _same_file(path, self.in_use))
        self._refresh_others(folder)

    def set_in_use(self, path: str | None) -> None:
        """The model loaded now (None: none, or a server's): marked "In use", without Load."""
        self.in_use = path
        self.refresh()

    def _refresh_others(self, folder: Path) -> None:
        while self.others_box.count():
            w = self.others_box.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        others = [m for m in installed_models(folder) if m.entry is None]
        self.others_title.setVisible(bool(others))
        for m in others:
            row = InstalledRow(m.name, m.path, m.size, m.in_place)
            row.set_in_use(_same_file(m.path, self.in_use))
            row.load_button.clicked.connect(lambda _=False, p=m.path: self.load_model(str(p)))
            row.delete_button.clicked.connect(lambda _=False, m=m: self._delete(m.path, m.name, m.in_place))
            row.show_button.clicked.connect(lambda _=False, p=m.path: self.open_folder(p.parent))
            self.others_box.addWidget(row)

    def _wire_card(self, card: ModelCard) -> None:
        key = card.entry.id
        card.download_clicked.connect(lambda: self.start(key))
        card.row.resume_clicked.connect(lambda: self.start(key))
        card.row.pause_clicked.connect(lambda: self.downloads.pause(key))
        card.row.cancel_clicked.connect(lambda: self.cancel(key))
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

    def cancel(self, key: str) -> None:
        """Cancel a download; what is downloaded already goes only if the user says so."""
        spec = self.specs[key]
        done = self.downloads.partial_bytes(spec)
        if self.downloads.is_running(key):
            job = self.downloads.manager.job(key)
            done = max(done, job.last.done if job is not None and job.last is not None else 0)
        if done > 0:
            choice = self.ask_cancel(spec.name, done)
            if choice is None:
                return                                  # keep downloading (or keep it paused)
            if choice == "pause":
                if self.downloads.is_running(key):
                    self.downloads.pause(key)
                return
        self.downloads.cancel(spec)

    def _delete(self, path: Path, name: str, in_place: bool = False) -> None:
        if in_place:
            text = self.tr("Forget {0}? The file stays where it is: {1}").format(name, path)
        else:
            text = self.tr("Delete {0} ({1})? It will have to be downloaded again to be used.").format(name, path)
        note = self.in_use_note(path)   # the model in use: which one takes over
        if not self.confirm(self.tr("Delete model"), f"{text}\n\n{note}" if note else text,
                            self.tr("Forget") if in_place else self.tr("Delete")):
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
        try:   # before asking anything about it: is it a model file at all?
            check_gguf(Path(path))
        except ModelFetchError as e:
            self.say(self.tr("{0} cannot be added: it is not a GGUF model file (or cannot be read). Choose a .gguf "
                             "file.").format(Path(path).name), error=True, detail=str(e))
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
            row.cancel_clicked.connect(lambda: self.cancel(spec.key))
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
        self.say(plain_download_error(message), error=True, detail=message)
        if key in self.cards:
            self.refresh()
            if not self.downloads.partial_bytes(self.specs[key]):
                self.cards[key].show_not_installed(self.tr("Download failed"))
        elif key in self.url_rows:
            spec = self.specs[key]
            self.url_rows[key].show_paused(self.downloads.partial_bytes(spec), spec.size)
        else:
            self.refresh()

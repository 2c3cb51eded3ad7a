"""A catalog model's card: what it is, its size, licence, what it is good at, whether it fits this
machine; then either Download (with its progress row) or, once installed, Load / Delete / Show in folder."""
from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from chatgui.models.catalog import CatalogEntry
from chatgui.models.fit import ASSUMED_BANDWIDTH, FITS, NO_FIT, SLOW, UNKNOWN, bytes_per_token, tokens_per_second
from chatgui.ui.common.i18n import translate

from .catalog_text import catalog_text

from .download_row import DownloadRow, mb

FIT_COLOURS = {FITS: "#15803d", SLOW: "#b45309", NO_FIT: "#b91c1c"}
# chatgui.models.fit's labels are data (English); shown translated.
FIT_NAMES = {FITS: QT_TRANSLATE_NOOP("ModelCard", "Fits"), SLOW: QT_TRANSLATE_NOOP("ModelCard", "May be slow"),
             NO_FIT: QT_TRANSLATE_NOOP("ModelCard", "Won't fit"), UNKNOWN: QT_TRANSLATE_NOOP("ModelCard", "Unknown")}


def in_use_badge() -> QLabel:
    badge = QLabel(translate("ModelCard", "In use"))
    badge.setObjectName("inUseBadge")
    badge.setToolTip(translate("ModelCard", "This model is loaded now"))
    badge.setStyleSheet("QLabel#inUseBadge { background: palette(highlight); color: palette(highlighted-text);"
                        " border-radius: 8px; padding: 2px 8px; font-weight: bold; }")
    badge.hide()
    return badge


def human_size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else mb(n)


class ModelCard(QFrame):
    download_clicked = Signal()
    load_clicked = Signal()
    delete_clicked = Signal()
    show_clicked = Signal()

    def __init__(self, entry: CatalogEntry, fit: str, parent=None):
        super().__init__(parent)
        self.entry = entry
        self.setObjectName(f"card-{entry.id}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(f"QFrame#card-{entry.id} {{ border: 1px solid palette(mid); border-radius: 6px; }}")
        box = QVBoxLayout(self)
        head = QHBoxLayout()
        title = QLabel(f"<b>{entry.name}</b>")
        title.setObjectName("cardTitle")
        head.addWidget(title, 1)
        self.fit_label = QLabel(translate("ModelCard", FIT_NAMES.get(fit, fit)))
        self.fit_label.setObjectName("fitLabel")
        self.fit_label.setStyleSheet(f"color: {FIT_COLOURS.get(fit, 'palette(text)')}; font-weight: bold;")
        self.fit_label.setToolTip(self.tr("From this machine's free memory, the file size and the KV cache "
                                          "at the chosen context length"))
        head.addWidget(self.fit_label)
        box.addLayout(head)
        kind = (self.tr("chat") if entry.is_chat
                else self.tr("embeddings for Knowledge, not chat") if entry.is_embedding
                else self.tr("text completion, not chat"))
        size = human_size(entry.size) if entry.pinned else self.tr("about {0}").format(human_size(entry.size))
        params = (self.tr("{0} MoE, {1} active").format(entry.parameters, entry.active_parameters) if entry.is_moe
                  else entry.parameters + " " + self.tr("parameters"))
        facts = QLabel(" · ".join([size, params, entry.quantization, entry.licence,
                                   self.tr("context {0}k").format(entry.context_length // 1024), kind,
                                   self.tr("~{0} tok/s").format(f"{tokens_per_second(entry):.0f}")]))
        facts.setToolTip(self.tr("Speed estimated from the weights read per token ({0}) at an assumed memory "
                                 "bandwidth of {1} GB/s (a typical CPU; a GPU is faster)").format(
                                     human_size(bytes_per_token(entry)), f"{ASSUMED_BANDWIDTH / 1e9:.0f}"))
        facts.setObjectName("cardFacts")
        box.addWidget(facts)
        good = QLabel(catalog_text(entry.good_at) + "  " + self.tr("Languages: {0}.").format(
            ", ".join(catalog_text(language) for language in entry.languages)))
        good.setObjectName("cardGoodAt")
        good.setWordWrap(True)
        good.setTextFormat(Qt.TextFormat.PlainText)
        box.addWidget(good)
        actions = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("cardStatus")
        actions.addWidget(self.status, 1)
        self.in_use_label = in_use_badge()
        actions.addWidget(self.in_use_label)
        self.download_button = QPushButton(self.tr("Download"))
        self.load_button = QPushButton(self.tr("Load"))
        self.delete_button = QPushButton(self.tr("Delete…"))
        self.show_button = QPushButton(self.tr("Show in folder"))
        for b, sig in ((self.download_button, self.download_clicked), (self.load_button, self.load_clicked),
                       (self.delete_button, self.delete_clicked), (self.show_button, self.show_clicked)):
            b.clicked.connect(sig)
            actions.addWidget(b)
        box.addLayout(actions)
        self.row = DownloadRow()
        box.addWidget(self.row)
        self.show_not_installed()

    def _buttons(self, installed: bool, downloading: bool) -> None:
        self.status.setVisible(not downloading)      # the download row says it all
        self.download_button.setVisible(not installed and not downloading)
        for b in (self.load_button, self.delete_button, self.show_button):
            b.setVisible(installed)
        self.row.setVisible(downloading)
        self.set_in_use(False)

    def set_in_use(self, in_use: bool) -> None:
        """The model loaded now: a badge instead of Load."""
        installed = self.delete_button.isVisibleTo(self)
        self.in_use_label.setVisible(in_use and installed)
        # (an embedding model is chosen on the Knowledge page, never loaded to chat)
        self.load_button.setVisible(installed and not in_use and not self.entry.is_embedding)

    def show_not_installed(self, error: str = "") -> None:
        self._buttons(False, False)
        self.status.setText(error)
        self.status.setStyleSheet("color: #b91c1c;" if error else "")

    def show_installed(self, size_on_disk: int) -> None:
        self._buttons(True, False)
        self.status.setStyleSheet("")
        self.status.setText(self.tr("Installed · {0} on disk").format(human_size(size_on_disk)))

    def show_downloading(self) -> None:
        self._buttons(False, True)
        self.status.setText("")

    def show_paused(self, done: int) -> None:
        self._buttons(False, True)
        self.row.show_paused(done, self.entry.size)

"""The welcome card, shown in the chat area on the first run and whenever no model can answer:
what chatgui is, the model recommended for this computer (chatgui.models.suggest) with one
Download button and its progress, and the other ways to a model (a file, the Models page, a
server).

It wraps its text and scrolls rather than clip: at 900 x 600 it fits, at any smaller size it
scrolls. Only widgets and signals; ModelController says what to show.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QVBoxLayout, QWidget)

from .catalog_text import catalog_text

CARD_WIDTH = 560      # the card's widest; narrower windows get a narrower card


def _label(text: str, name: str, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def _size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


class WelcomeCard(QScrollArea):
    download_clicked = Signal()
    cancel_clicked = Signal()
    file_clicked = Signal()
    models_clicked = Signal()
    server_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("welcomeCard")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)   # it wraps instead
        outer = QWidget()
        outer.setObjectName("welcomeBackground")
        centre = QHBoxLayout(outer)
        centre.setContentsMargins(16, 24, 16, 24)
        self.card = QFrame()
        self.card.setObjectName("welcomeFrame")
        self.card.setMaximumWidth(CARD_WIDTH)
        self.card.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
        centre.addWidget(self.card)
        column = QVBoxLayout(self.card)
        column.setContentsMargins(24, 22, 24, 22)
        column.setSpacing(10)

        self.title = _label(self.tr("Welcome to chatgui"), "welcomeTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.title.setFont(font)
        column.addWidget(self.title)
        self.intro = _label(self.tr("chatgui chats with a language model that runs on this computer: your chats stay "
                                    "here and nothing is sent anywhere. To start, it needs one model."), "welcomeIntro")
        column.addWidget(self.intro)

        self.recommendation = QFrame()
        self.recommendation.setObjectName("welcomeRecommendation")
        box = QVBoxLayout(self.recommendation)
        box.setContentsMargins(16, 14, 16, 14)
        box.setSpacing(6)
        self.caption = _label(self.tr("Recommended for this computer"), "welcomeCaption")
        self.model_name = _label("", "welcomeModelName")
        bold = self.model_name.font()
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.model_name.setFont(bold)
        self.model_facts = _label("", "welcomeModelFacts")
        self.download_button = QPushButton()
        self.download_button.setObjectName("welcomeDownloadButton")
        self.download_button.setDefault(True)
        self.download_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.progress = QProgressBar()
        self.progress.setObjectName("welcomeProgress")
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress_text = _label("", "welcomeProgressText")
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setObjectName("welcomeCancelButton")
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_text, 1)
        progress_row.addWidget(self.cancel_button)
        self.error = _label("", "welcomeError")
        for widget in (self.caption, self.model_name, self.model_facts):
            box.addWidget(widget)
        box.addWidget(self.download_button)
        box.addWidget(self.progress)
        box.addLayout(progress_row)
        box.addWidget(self.error)
        column.addWidget(self.recommendation)

        self.others = _label(self.tr("Or:"), "welcomeOthers", wrap=False)
        links = QHBoxLayout()
        links.setSpacing(6)
        links.addWidget(self.others)
        self.file_button = self._link(self.tr("Choose a .gguf file…"), "welcomeFileButton")
        self.models_button = self._link(self.tr("All models…"), "welcomeModelsButton")
        self.server_button = self._link(self.tr("Connect to a server…"), "welcomeServerButton")
        for button in (self.file_button, self.models_button, self.server_button):
            links.addWidget(button)
        links.addStretch(1)
        column.addLayout(links)
        self.setWidget(outer)

        self.download_button.clicked.connect(self.download_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.file_button.clicked.connect(self.file_clicked)
        self.models_button.clicked.connect(self.models_clicked)
        self.server_button.clicked.connect(self.server_clicked)
        self._can_download = True
        self._set_downloading(False)
        self.error.hide()

    @staticmethod
    def _link(text: str, name: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setFlat(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        return button

    # -- what it shows ---------------------------------------------------------------------
    def show_offer(self, entry, fit_text: str, can_download: bool = True) -> None:
        """The recommended catalog entry, its size and fit; Download unless downloads are off."""
        self.model_name.setText(entry.name)
        facts = [_size(entry.size), fit_text]
        if entry.good_at:
            facts.append(catalog_text(entry.good_at))   # the catalog is English data
        self.model_facts.setText(" · ".join(facts))
        self.download_button.setText(self.tr("Download ({size})").format(size=_size(entry.size)))
        self._can_download = can_download
        self.caption.setText(self.tr("Recommended for this computer") if can_download else
                             self.tr("Recommended for this computer (downloads are turned off: add its file with "
                                     "“Choose a .gguf file…”)"))
        self._set_downloading(False)
        self.error.hide()

    def show_progress(self, text: str, fraction: float | None) -> None:
        self._set_downloading(True)
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress_text.setText(text)
        self.error.hide()

    def show_error(self, text: str) -> None:
        """A download that failed: the reason, and Download again offered as "Try again"."""
        self._set_downloading(False)
        self.error.setText(text)
        self.error.show()
        self.download_button.setText(self.tr("Try again"))

    def is_downloading(self) -> bool:
        return not self.progress.isHidden()

    def _set_downloading(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.progress_text.setVisible(on)
        self.cancel_button.setVisible(on)
        self.download_button.setVisible(not on and self._can_download)

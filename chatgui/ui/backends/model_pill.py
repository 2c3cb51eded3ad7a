"""The model pill at the top of the conversation (as in LM Studio and Jan): the model in use by its
one display name, a dot for its state (ready, loading or downloading, failed, none), and a click
that opens a menu to switch among the installed models or open the Models page.

A long name ends in "…" (never cut off), with the whole name, the file and the state in the tooltip.
Only widgets and signals; ModelController says what to show.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSizePolicy, QToolButton

NONE, LOADING, READY, FAILED = "none", "loading", "ready", "failed"
DOT_COLOURS = {NONE: "#9a9ea7", LOADING: "#d97706", READY: "#16a34a", FAILED: "#dc2626"}
MAX_WIDTH = 420      # a long name stops growing the pill here and is elided
MIN_WIDTH = 120
ARROW = " ▾"


def _dot(colour: str, size: int = 10) -> QIcon:
    pixmap = QPixmap(size * 2, size * 2)   # drawn at twice the size: sharp on high-DPI screens
    pixmap.setDevicePixelRatio(2.0)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


class ModelPill(QToolButton):
    model_chosen = Signal(str)        # the path of an installed model picked in the menu
    models_requested = Signal()       # the Models page
    file_requested = Signal()         # choose a .gguf file

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("modelPill")
        self.setAccessibleName(self.tr("Model"))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setIconSize(QSize(10, 10))
        font = self.font()
        font.setBold(True)   # here, not in the style sheet: the eliding measures with this font
        self.setFont(font)
        self.menu_ = QMenu(self)
        self.menu_.setObjectName("modelPillMenu")
        self.menu_.aboutToShow.connect(self._fill_menu)
        self.setMenu(self.menu_)
        self.state = NONE
        self.full_text = ""
        self.path = ""                                  # the model in use ("" while none)
        # () -> [(display name, path)] of the models on this computer, asked each time the menu
        # opens (a download finished or a file deleted meanwhile is then listed as it is)
        self.installed: Callable[[], list[tuple[str, str]]] = lambda: []
        self.show_none()

    # -- what it shows ---------------------------------------------------------------------
    def show_none(self, text: str | None = None) -> None:
        self.path = ""
        self._show(NONE, text or self.tr("No model"), self.tr("No model is loaded: click to choose one."))

    def show_loading(self, text: str, fraction: float | None = None) -> None:
        """text: "Loading Qwen2.5 Coder…"; fraction 0..1 when the progress is known."""
        shown = text if fraction is None else f"{text} {fraction * 100:.0f}%"
        self._show(LOADING, shown, shown)

    def show_ready(self, name: str, path: str, remote: bool = False) -> None:
        self.path = path
        where = self.tr("Answers come from the server at {url}").format(url=path) if remote else path
        self._show(READY, name, f"{name}\n{where}\n" + self.tr("Ready. Click to switch models."))

    def show_failed(self, name: str, reason: str) -> None:
        self.path = ""
        self._show(FAILED, self.tr("{name} could not be loaded").format(name=name), reason)

    def _show(self, state: str, text: str, tip: str) -> None:
        self.state = state
        self.full_text = text
        self.setIcon(_dot(DOT_COLOURS[state]))
        self.setToolTip(tip)
        self.setAccessibleDescription(tip)
        self.updateGeometry()
        self._elide()

    # -- eliding ---------------------------------------------------------------------------
    def _chrome_width(self) -> int:
        """Width taken by everything but the name: the dot, the arrow, the padding."""
        return self.iconSize().width() + self.fontMetrics().horizontalAdvance(ARROW) + 34

    def sizeHint(self) -> QSize:   # noqa: N802 (Qt override)
        hint = super().sizeHint()
        # (+6: elidedText() shortens a text given exactly its horizontalAdvance)
        wanted = self.fontMetrics().horizontalAdvance(self.full_text) + self._chrome_width() + 6
        return QSize(max(MIN_WIDTH, min(MAX_WIDTH, wanted)), hint.height())

    def minimumSizeHint(self) -> QSize:   # noqa: N802 (Qt override)
        return QSize(MIN_WIDTH, super().minimumSizeHint().height())

    def shown_text(self) -> str:
        """The name as drawn now (ends in "…" when it does not fit)."""
        return self.text().removesuffix(ARROW)

    def _elide(self) -> None:
        room = max(0, self.width() - self._chrome_width())
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, room)
        self.setText(shown + ARROW)

    def resizeEvent(self, event) -> None:   # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._elide()

    # -- the menu --------------------------------------------------------------------------
    def _fill_menu(self) -> None:
        menu = self.menu_
        menu.clear()
        installed = self.installed()
        if installed:
            title = menu.addAction(self.tr("Installed models"))
            title.setEnabled(False)
        for name, path in installed:
            action = QAction(name, menu, checkable=True)
            action.setChecked(path == self.path)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self._pick(p))
            menu.addAction(action)
        menu.setToolTipsVisible(True)
        if installed:
            menu.addSeparator()
        menu.addAction(self.tr("Download or manage models…"), self.models_requested.emit)
        menu.addAction(self.tr("Choose a .gguf file…"), self.file_requested.emit)

    def _pick(self, path: str) -> None:
        if path != self.path:
            self.model_chosen.emit(path)

"""Where the user types: a rounded box that grows with its text (up to MAX_LINES), with the
send button inside it; Enter sends, Shift+Enter starts a new line; Send turns into Stop.

A very large paste (a whole file) is kept aside as an attachment shown as one line, instead of
being put in the editor: laying out a megabyte-long paragraph takes the text editor about half a
second on every keystroke. The attachment is sent after the typed text.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QSizePolicy, QToolButton, QVBoxLayout,
                               QWidget)

LARGE_PASTE_CHARS = 100_000
MIN_LINES, MAX_LINES = 2, 10
COLUMN_WIDTH = 800   # as conversation_view.MAX_COLUMN_WIDTH   # the box grows with its text between these; then it scrolls


def _icon(kind: str) -> QIcon:
    """An arrow up (send) or a square (stop), drawn in white for the accent-coloured button."""
    pixmap = QPixmap(40, 40)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("white"), 4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                        Qt.PenJoinStyle.RoundJoin))
    if kind == "send":
        path = QPainterPath(QPointF(20, 31))
        path.lineTo(20, 9)
        path.moveTo(11, 18)
        path.lineTo(20, 9)
        path.lineTo(29, 18)
        painter.drawPath(path)
    else:
        painter.fillRect(12, 12, 16, 16, QColor("white"))
    painter.end()
    return QIcon(pixmap)


def _local_files(mime) -> list[str]:
    """The files a paste or a drop carries (file URLs), or [] when it is not only files."""
    if not mime.hasUrls():
        return []
    urls = mime.urls()
    return [u.toLocalFile() for u in urls] if urls and all(u.isLocalFile() for u in urls) else []


class MessageInput(QPlainTextEdit):
    """Plain text only (a paste keeps no formatting) and no work per keystroke, so even a
    megabyte-long paste stays responsive."""

    submitted = Signal()
    large_paste = Signal(str)
    files_pasted = Signal(list)   # local file paths (a file copied in a file manager)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("messageInput")
        self.setAccessibleName(self.tr("Message"))
        self.setPlaceholderText(self.tr("Type a message. Enter sends, Shift+Enter adds a line."))
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self._fit_height()

    def _fit_height(self, *_):
        lines = QFontMetrics(self.font()).lineSpacing()
        shown = min(MAX_LINES, max(MIN_LINES, int(self.document().size().height())))
        self.setFixedHeight(shown * lines + 2 * int(self.document().documentMargin()) + 2 * self.frameWidth())

    def canInsertFromMimeData(self, source):   # noqa: N802 (Qt override)
        return bool(_local_files(source)) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source):   # noqa: N802 (Qt override)
        files = _local_files(source)
        if files:
            self.files_pasted.emit(files)
            return
        if source.hasText():
            text = source.text()
            if len(text) > LARGE_PASTE_CHARS:
                self.large_paste.emit(text)
                return
        super().insertFromMimeData(source)

    def keyPressEvent(self, event):   # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods == Qt.KeyboardModifier.NoModifier:
                self.submitted.emit()
                return
            if mods == Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
                return
        super().keyPressEvent(event)


class InputBar(QWidget):
    send_clicked = Signal()
    stop_clicked = Signal()
    attach_clicked = Signal()      # the paperclip: choose files to attach
    files_pasted = Signal(list)    # file paths pasted into the box

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("inputBar")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 4, 12, 8)
        outer.setSpacing(4)
        self._attachments: list[str] = []
        self.attachment_row = QWidget(self)
        chip = QHBoxLayout(self.attachment_row)
        chip.setContentsMargins(0, 0, 0, 0)
        self.attachment_label = QLabel()
        self.attachment_label.setObjectName("attachmentLabel")
        remove = QToolButton()
        remove.setText("✕")
        remove.setToolTip(self.tr("Remove the pasted text"))
        remove.setAccessibleName(self.tr("Remove the pasted text"))
        remove.setAutoRaise(True)
        remove.clicked.connect(self.clear_attachments)
        chip.addWidget(self.attachment_label)
        chip.addWidget(remove)
        chip.addStretch(1)
        self.attachment_row.hide()
        outer.addWidget(self.attachment_row)
        self.composer = QFrame(self)
        self.composer.setObjectName("composer")
        layout = QHBoxLayout(self.composer)
        layout.setContentsMargins(10, 4, 6, 6)
        outer.addWidget(self.composer)
        self.attach_button = QToolButton(self)
        self.attach_button.setObjectName("attachButton")
        self.attach_button.setText("📎")
        self.attach_button.setAutoRaise(True)
        self.attach_button.setToolTip(self.tr("Attach files (or drop them on the window)"))
        self.attach_button.setAccessibleName(self.tr("Attach files"))
        self.attach_button.clicked.connect(self.attach_clicked)
        layout.addWidget(self.attach_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.input = MessageInput(self)
        self.input.large_paste.connect(self.attach)
        self.input.files_pasted.connect(self.files_pasted)
        layout.addWidget(self.input, 1, Qt.AlignmentFlag.AlignVCenter)
        self.send_button = self._round_button(self.tr("Send"), "sendButton", "send", self.tr("Send (Enter)"))
        self.stop_button = self._round_button(self.tr("Stop"), "stopButton", "stop", self.tr("Stop the reply (Esc)"))
        self.stop_button.hide()
        layout.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.busy_hint = QLabel("")   # says why Enter did nothing
        self.busy_hint.setObjectName("composerHint")
        self.busy_hint.setEnabled(False)
        self.busy_hint.setWordWrap(True)
        self.busy_hint.hide()
        outer.addWidget(self.busy_hint)
        self.input.submitted.connect(self.send_clicked)
        self.send_button.clicked.connect(self.send_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)

    def _round_button(self, text: str, name: str, icon: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)   # for screen readers; the icon is what is seen
        button.setObjectName(name)
        button.setAccessibleName(text)
        button.setToolTip(tip)
        button.setIcon(_icon(icon))
        button.setIconSize(QSize(18, 18))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button

    def resizeEvent(self, event):   # noqa: N802 (Qt override)
        super().resizeEvent(event)
        side = max(12, (self.width() - COLUMN_WIDTH + 1) // 2)   # under the message column
        self.layout().setContentsMargins(side, 4, side, 10)

    def show_hint(self, text: str) -> None:
        """A line under the box (e.g. why Enter did nothing); "" hides it."""
        self.busy_hint.setText(text)
        self.busy_hint.setVisible(bool(text))

    def set_streaming(self, streaming: bool) -> None:
        self.send_button.setVisible(not streaming)
        self.stop_button.setVisible(streaming)
        if not streaming:
            self.show_hint("")

    def set_send_blocked(self, reason: str) -> None:
        """reason "": Send works; else Send is off and its tooltip says why (the model is still
        loading). Typing stays possible: the text waits in the box."""
        self.send_button.setEnabled(not reason)
        self.send_button.setToolTip(reason or self.tr("Send (Enter)"))

    def attach(self, text: str) -> None:
        self._attachments.append(text)
        total = sum(len(t) for t in self._attachments)
        self.attachment_label.setText(self.tr("Pasted text: {count} characters (sent with your message)")
                                      .format(count=f"{total:,}"))
        self.attachment_row.show()

    def clear_attachments(self) -> None:
        self._attachments = []
        self.attachment_row.hide()

    def text(self) -> str:
        """The whole message: what was typed, then any large pasted text."""
        parts = [self.input.toPlainText()] + self._attachments
        return "\n\n".join(p for p in parts if p)

    def clear(self) -> None:
        self.input.clear()
        self.clear_attachments()

"""Where the user types: Enter sends, Shift+Enter starts a new line; Send turns into Stop.

A very large paste (a whole file) is kept aside as an attachment shown as one line, instead of
being put in the editor: laying out a megabyte-long paragraph takes the text editor about half a
second on every keystroke. The attachment is sent after the typed text.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget

LARGE_PASTE_CHARS = 100_000


class MessageInput(QPlainTextEdit):
    """Plain text only (a paste keeps no formatting) and no work per keystroke, so even a
    megabyte-long paste stays responsive."""

    submitted = Signal()
    large_paste = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("messageInput")
        self.setAccessibleName(self.tr("Message"))
        self.setPlaceholderText(self.tr("Type a message. Enter sends, Shift+Enter adds a line."))
        self.setTabChangesFocus(True)
        lines = QFontMetrics(self.font()).lineSpacing()
        self.setMinimumHeight(2 * lines + 16)

    def insertFromMimeData(self, source):   # noqa: N802 (Qt override)
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
        layout = QHBoxLayout()
        outer.addLayout(layout, 1)
        self.input = MessageInput(self)
        self.input.large_paste.connect(self.attach)
        layout.addWidget(self.input, 1)
        column = QVBoxLayout()
        self.send_button = QPushButton(self.tr("Send"))
        self.send_button.setObjectName("sendButton")
        self.send_button.setAccessibleName(self.tr("Send"))
        self.send_button.setToolTip(self.tr("Send (Enter)"))
        self.send_button.setDefault(True)
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setAccessibleName(self.tr("Stop"))
        self.stop_button.setToolTip(self.tr("Stop the reply (Esc)"))
        self.stop_button.hide()
        column.addWidget(self.send_button)
        column.addWidget(self.stop_button)
        column.addStretch(1)
        layout.addLayout(column)
        self.input.submitted.connect(self.send_clicked)
        self.send_button.clicked.connect(self.send_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)

    def set_streaming(self, streaming: bool) -> None:
        self.send_button.setVisible(not streaming)
        self.stop_button.setVisible(streaming)

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

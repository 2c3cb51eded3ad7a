"""File > Trash…: the chats deleted in the last TRASH_DAYS days, one row each with its title, when it
was deleted and when it will be gone for good, Restore and Delete forever; Empty trash below."""
from __future__ import annotations

import math
import time
from typing import Callable

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import (QDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout,
                               QWidget)

from chatgui.store import HistoryStore, StoreError
from chatgui.ui.chat.library import TRASH_DAYS
from chatgui.ui.common.confirm import DESTRUCTIVE_RED, ask
from chatgui.ui.common.elided_label import ElidedLabel

DAY = 86400

STYLE = f"""
QDialog#trashDialog, QWidget#trashRows, QScrollArea#trashScroll {{ background: palette(base); border: none; }}
QLabel#trashHeading {{ font-size: 16px; font-weight: bold; }}
QLabel#trashNote, QLabel#trashDates {{ color: palette(placeholder-text); }}
QLabel#trashEmpty {{ color: palette(placeholder-text); padding: 40px; }}
QFrame#trashRow {{ background: palette(alternate-base); border: none; border-radius: 10px; }}
QLabel#trashTitle {{ font-weight: bold; }}
QPushButton {{ padding: 5px 12px; border-radius: 8px; border: 1px solid palette(mid); background: palette(base); }}
QPushButton:hover {{ background: palette(midlight); }}
QPushButton:disabled {{ color: palette(placeholder-text); border-color: palette(midlight); }}
QPushButton#trashDeleteButton, QPushButton#trashEmptyButton:enabled {{ color: {DESTRUCTIVE_RED}; }}
"""


def days_left(deleted: float, now: float) -> int:
    """Whole days (rounded up) until a chat deleted at `deleted` is purged; 0: at the next start."""
    return max(0, math.ceil((deleted + TRASH_DAYS * DAY - now) / DAY))


class TrashRow(QFrame):
    def __init__(self, chat_id: str, title: str, deleted: float, now: float, parent=None):
        super().__init__(parent)
        self.setObjectName("trashRow")
        self.chat_id = chat_id
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 8, 8)
        text = QVBoxLayout()
        text.setSpacing(2)
        self.title = ElidedLabel(title)
        self.title.setObjectName("trashTitle")
        self.title.setToolTip(title)
        # ISO dates: unambiguous in every language (a short locale format can read "5 01 2027")
        deleted_on = QDateTime.fromSecsSinceEpoch(int(deleted)).toString("yyyy-MM-dd HH:mm")
        gone_on = QDateTime.fromSecsSinceEpoch(int(deleted + TRASH_DAYS * DAY)).toString("yyyy-MM-dd")
        left = days_left(deleted, now)
        if left == 0:
            gone = self.tr("gone for good at the next start")
        elif left == 1:
            gone = self.tr("gone for good tomorrow ({0})").format(gone_on)
        else:
            gone = self.tr("gone for good on {0} (in {1} days)").format(gone_on, left)
        self.dates = QLabel(self.tr("Deleted {0} · {1}").format(deleted_on, gone))
        self.dates.setObjectName("trashDates")
        self.dates.setWordWrap(True)
        text.addWidget(self.title)
        text.addWidget(self.dates)
        row.addLayout(text, 1)
        self.restore_button = QPushButton(self.tr("Restore"))
        self.restore_button.setObjectName("trashRestoreButton")
        self.delete_button = QPushButton(self.tr("Delete forever"))
        self.delete_button.setObjectName("trashDeleteButton")
        for button in (self.restore_button, self.delete_button):
            button.setAccessibleDescription(title)
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)


class TrashDialog(QDialog):
    def __init__(self, store: HistoryStore, restore: Callable[[str], bool], parent=None):
        super().__init__(parent)
        self.setObjectName("trashDialog")
        self.setWindowTitle(self.tr("Trash"))
        self.setStyleSheet(STYLE)
        self.store, self.restore = store, restore
        self.rows: list[TrashRow] = []
        column = QVBoxLayout(self)
        column.setContentsMargins(20, 18, 20, 16)
        column.setSpacing(8)
        heading = QLabel(self.tr("Trash"))
        heading.setObjectName("trashHeading")
        column.addWidget(heading)
        self.note = QLabel(self.tr("Deleted chats stay here for {0} days, then they are gone for good.")
                           .format(TRASH_DAYS))
        self.note.setObjectName("trashNote")
        self.note.setWordWrap(True)
        column.addWidget(self.note)

        self.scroll = QScrollArea()
        self.scroll.setObjectName("trashScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("trashRows")
        self.rows_layout = QVBoxLayout(body)
        self.rows_layout.setContentsMargins(0, 4, 0, 4)
        self.rows_layout.setSpacing(6)
        self.empty_label = QLabel(self.tr("The trash is empty."))
        self.empty_label.setObjectName("trashEmpty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.rows_layout.addWidget(self.empty_label)
        self.rows_layout.addStretch(1)
        self.scroll.setWidget(body)
        self.scroll.setAccessibleName(self.tr("Deleted chats"))
        column.addWidget(self.scroll, 1)

        buttons = QHBoxLayout()
        self.empty_button = QPushButton(self.tr("Empty trash…"))
        self.empty_button.setObjectName("trashEmptyButton")
        close = QPushButton(self.tr("Close"))
        buttons.addWidget(self.empty_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        column.addLayout(buttons)
        self.empty_button.clicked.connect(self.empty)
        close.clicked.connect(self.close)
        self.resize(560, 420)
        self.refresh()

    def count(self) -> int:
        return len(self.rows)

    def refresh(self) -> None:
        for row in self.rows:
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.rows = []
        try:
            entries = self.store.list_trash()
        except StoreError as e:
            self.note.setText(str(e))
            entries = []
        now = time.time()
        for place, (summary, deleted) in enumerate(entries):
            row = TrashRow(summary.id, summary.title or self.tr("New chat"), deleted, now)
            row.restore_button.clicked.connect(lambda _=False, i=summary.id: self.restore_chat(i))
            row.delete_button.clicked.connect(lambda _=False, r=row: self.delete_forever(r))
            self.rows_layout.insertWidget(place, row)
            self.rows.append(row)
        self.empty_label.setVisible(not self.rows)
        self.empty_button.setEnabled(bool(self.rows))

    def restore_chat(self, chat_id: str) -> None:
        if self.restore(chat_id):
            self.refresh()

    def delete_forever(self, row: TrashRow) -> None:
        if not self.confirm(self.tr("Delete forever"),
                            self.tr("Delete “{0}” for good? This cannot be undone.").format(row.title.text()),
                            self.tr("Delete forever")):
            return
        try:
            self.store.delete(row.chat_id)
        except StoreError as e:
            self.note.setText(str(e))
        self.refresh()

    def empty(self) -> None:
        if not self.confirm(self.tr("Empty trash"),
                            self.tr("Delete the {0} chats in the trash for good? This cannot be undone.")
                            .format(self.count()), self.tr("Empty trash")):
            return
        try:
            self.store.empty_trash()
        except StoreError as e:
            self.note.setText(str(e))
        self.refresh()

    def confirm(self, title: str, text: str, primary: str) -> bool:
        return ask(self, title, text, primary, destructive=True) == "primary"

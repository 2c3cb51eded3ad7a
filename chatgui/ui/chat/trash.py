"""File > Trash…: the chats deleted in the last 30 days, to restore or to delete for good."""
from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton,
                               QVBoxLayout)

from chatgui.store import HistoryStore, StoreError


class TrashDialog(QDialog):
    def __init__(self, store: HistoryStore, restore: Callable[[str], bool], parent=None):
        super().__init__(parent)
        self.setObjectName("trashDialog")
        self.setWindowTitle(self.tr("Trash"))
        self.store, self.restore = store, restore
        column = QVBoxLayout(self)
        self.note = QLabel(self.tr("Deleted chats stay here for 30 days, then they are gone for good."))
        self.note.setWordWrap(True)
        column.addWidget(self.note)
        self.list = QListWidget()
        self.list.setObjectName("trashList")
        self.list.setAccessibleName(self.tr("Deleted chats"))
        column.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.restore_button = QPushButton(self.tr("Restore"))
        self.delete_button = QPushButton(self.tr("Empty trash…"))
        close = QPushButton(self.tr("Close"))
        buttons.addWidget(self.restore_button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(close)
        column.addLayout(buttons)
        self.restore_button.clicked.connect(self.restore_selected)
        self.delete_button.clicked.connect(self.empty)
        self.list.itemDoubleClicked.connect(lambda _item: self.restore_selected())
        close.clicked.connect(self.close)
        self.resize(480, 360)
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        try:
            entries = self.store.list_trash()
        except StoreError as e:
            self.note.setText(str(e))
            entries = []
        for summary, deleted in entries:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(deleted))
            item = QListWidgetItem(self.tr("{title} — deleted {when}").format(
                title=summary.title or self.tr("New chat"), when=when))
            item.setData(Qt.ItemDataRole.UserRole, summary.id)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        self.restore_button.setEnabled(bool(self.list.count()))
        self.delete_button.setEnabled(bool(self.list.count()))

    def restore_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None and self.restore(item.data(Qt.ItemDataRole.UserRole)):
            self.refresh()

    def empty(self) -> None:
        if not self.confirm(self.tr("Delete the {count} chats in the trash for good? This cannot be undone.").format(
                count=self.list.count())):
            return
        try:
            self.store.empty_trash()
        except StoreError as e:
            self.note.setText(str(e))
        self.refresh()

    def confirm(self, text: str) -> bool:   # (tests replace this)
        return QMessageBox.question(self, self.tr("Empty trash"), text) == QMessageBox.StandardButton.Yes

"""The list of chats on the left: search, new, rename (in place), delete."""
from __future__ import annotations

import datetime
import time

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

ID_ROLE = Qt.ItemDataRole.UserRole
UNTITLED = QT_TRANSLATE_NOOP("ChatListPanel", "New chat")   # shown translated


GROUPS = (QT_TRANSLATE_NOOP("ChatListPanel", "Today"), QT_TRANSLATE_NOOP("ChatListPanel", "Yesterday"),
          QT_TRANSLATE_NOOP("ChatListPanel", "Previous 7 days"), QT_TRANSLATE_NOOP("ChatListPanel", "Older"))
HEADER_ROLE = Qt.ItemDataRole.UserRole + 1


def day_group(updated: float, today: datetime.date) -> str:
    """Which of GROUPS a chat last changed at `updated` (epoch seconds) falls in, by local calendar day."""
    days = (today - datetime.date.fromtimestamp(updated)).days
    if days <= 0:
        return GROUPS[0]
    if days == 1:
        return GROUPS[1]
    return GROUPS[2] if days <= 7 else GROUPS[3]


class ChatListPanel(QWidget):
    chat_selected = Signal(str)
    new_chat_requested = Signal()
    delete_requested = Signal(str)
    renamed = Signal(str, str)          # chat id, new title
    search_changed = Signal(str)        # debounced

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("chatListPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        self.search = QLineEdit()
        self.search.setObjectName("chatSearch")
        self.search.setAccessibleName(self.tr("Search chats"))
        self.search.setPlaceholderText(self.tr("Search chats (Ctrl+F)"))
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)

        self.list = QListWidget()
        self.list.setObjectName("chatList")
        self.list.setAccessibleName(self.tr("Chats"))
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QAbstractItemView.EditTrigger.DoubleClicked)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)   # long titles elide
        layout.addWidget(self.list, 1)

        buttons = QHBoxLayout()
        self.new_button = self._button(self.tr("New"), self.tr("New chat (Ctrl+N)"), "newChatButton")
        self.rename_button = self._button(self.tr("Rename"), self.tr("Rename chat (F2)"), "renameChatButton")
        self.delete_button = self._button(self.tr("Delete"), self.tr("Delete chat"), "deleteChatButton")
        for b in (self.new_button, self.rename_button, self.delete_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)

        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(lambda: self.search_changed.emit(self.search.text()))
        self.search.textChanged.connect(lambda _text: self._debounce.start())
        self.new_button.clicked.connect(self.new_chat_requested)
        self.rename_button.clicked.connect(self.edit_current_title)
        self.delete_button.clicked.connect(self._delete_current)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_edited)
        self._filling = False
        self._shown: list[tuple] = []   # (header, chat id, text) of each row, as filled

    @staticmethod
    def _button(text: str, tip: str, name: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setObjectName(name)
        return button

    # -- contents --------------------------------------------------------------------------
    def set_chats(self, entries: list[tuple[str, str, float]], current_id: str | None) -> None:
        """entries: (id, title, updated) newest first, shown under Today / Yesterday / Previous
        7 days / Older. Keeps `current_id` selected. When the rows shown stay the same (a message
        sent in the newest chat only changes its time) only the tooltips change: rebuilding
        2,000 rows would hold up the window for ~50 ms at each message."""
        untitled = self.tr(UNTITLED)
        today = datetime.date.today()
        rows, group = [], None   # (header text or None, chat id, text, tooltip)
        for chat_id, title, updated in entries:
            if day_group(updated, today) != group:
                group = day_group(updated, today)
                rows.append((self.tr(group), None, self.tr(group), ""))
            rows.append((None, chat_id, title or untitled,
                         f"{title or untitled}\n{time.strftime('%Y-%m-%d %H:%M', time.localtime(updated))}"))
        self._filling = True
        try:
            if [row[:3] for row in rows] == self._shown:
                for i, (_header, chat_id, _text, tip) in enumerate(rows):
                    item = self.list.item(i)
                    if chat_id is not None and item.toolTip() != tip:
                        item.setToolTip(tip)
            else:
                self._fill(rows)
            row = next((i for i, r in enumerate(rows) if r[1] is not None and r[1] == current_id), -1)
            if self.list.currentRow() != row:
                self.list.setCurrentRow(row)   # -1: the open chat is not listed (a new one while searching)
        finally:
            self._filling = False
        self._update_buttons()

    def _fill(self, rows: list[tuple]) -> None:
        self.list.clear()
        for header, chat_id, text, tip in rows:
            if header is not None:
                self._add_header(header)
                continue
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, chat_id)
            item.setToolTip(tip)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
        self._shown = [row[:3] for row in rows]

    def _add_header(self, text: str) -> None:
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)   # not selectable: the arrow keys pass over it
        font = item.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.85)
        item.setFont(font)
        item.setData(HEADER_ROLE, True)
        self.list.addItem(item)

    def _chat_items(self) -> list[QListWidgetItem]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [item for item in items if not item.data(HEADER_ROLE)]

    def group_headers(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count()) if self.list.item(i).data(HEADER_ROLE)]

    def chat_ids(self) -> list[str]:
        return [item.data(ID_ROLE) for item in self._chat_items()]

    def titles(self) -> list[str]:
        return [item.text() for item in self._chat_items()]

    def current_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item else None

    def select(self, chat_id: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == chat_id:
                self.list.setCurrentRow(i)
                return

    def edit_current_title(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)

    def search_query(self) -> str:
        """What is typed in the search box, trimmed ("" shows every chat)."""
        return self.search.text().strip()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    # -- reactions -------------------------------------------------------------------------
    def _current_changed(self, current, _previous) -> None:
        self._update_buttons()
        if current is not None and not self._filling:
            self.chat_selected.emit(current.data(ID_ROLE))

    def _item_edited(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self._shown = []   # the row no longer shows what was filled in: the next fill rebuilds it
            self.renamed.emit(item.data(ID_ROLE), item.text().strip())

    def _delete_current(self) -> None:
        chat_id = self.current_id()
        if chat_id:
            self.delete_requested.emit(chat_id)

    def _update_buttons(self) -> None:
        has = self.list.currentItem() is not None
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

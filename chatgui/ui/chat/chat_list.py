"""The list of chats on the left: "New chat" on top, search, and each chat's "⋯" menu (shown on
hover and on the selected row; also the right-click menu): rename in place, export, delete."""
from __future__ import annotations

import datetime
import time

from PySide6.QtCore import QEvent, QPoint, QRect, QT_TRANSLATE_NOOP, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton,
                               QStyle, QStyledItemDelegate, QVBoxLayout, QWidget)

from chatgui.store import EXPORT_FORMATS
from chatgui.ui.chat.action_icons import action_icon

ID_ROLE = Qt.ItemDataRole.UserRole
UNTITLED = QT_TRANSLATE_NOOP("ChatListPanel", "New chat")   # shown translated


GROUPS = (QT_TRANSLATE_NOOP("ChatListPanel", "Today"), QT_TRANSLATE_NOOP("ChatListPanel", "Yesterday"),
          QT_TRANSLATE_NOOP("ChatListPanel", "Previous 7 days"), QT_TRANSLATE_NOOP("ChatListPanel", "Older"))
HEADER_ROLE = Qt.ItemDataRole.UserRole + 1
MORE_WIDTH = 28   # the "⋯" button at a row's right end (the row's text stops before it: theme.py)


def day_group(updated: float, today: datetime.date) -> str:
    """Which of GROUPS a chat last changed at `updated` (epoch seconds) falls in, by local calendar day."""
    days = (today - datetime.date.fromtimestamp(updated)).days
    if days <= 0:
        return GROUPS[0]
    if days == 1:
        return GROUPS[1]
    return GROUPS[2] if days <= 7 else GROUPS[3]


def more_rect(row: QRect) -> QRect:
    """Where a row's "⋯" button is drawn and clicked."""
    return QRect(row.right() - MORE_WIDTH, row.top(), MORE_WIDTH, row.height())


class _RowDelegate(QStyledItemDelegate):
    """Draws "⋯" on the chat row under the pointer and on the selected one."""

    def paint(self, painter, option, index) -> None:
        super().paint(painter, option, index)
        if index.data(HEADER_ROLE) or not option.state & (QStyle.StateFlag.State_MouseOver
                                                            | QStyle.StateFlag.State_Selected):
            return
        box = more_rect(option.rect)
        action_icon("more").paint(painter, box.adjusted(6, 0, -6, 0))


class ChatListPanel(QWidget):
    chat_selected = Signal(str)
    new_chat_requested = Signal()
    delete_requested = Signal(str)
    renamed = Signal(str, str)          # chat id, new title
    export_requested = Signal(str, str)   # chat id, an ExportFormat value
    search_changed = Signal(str)        # debounced

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("chatListPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton(action_icon("new"), self.tr("New chat"))
        self.new_button.setObjectName("newChatButton")
        self.new_button.setToolTip(self.tr("New chat (Ctrl+N)"))
        self.new_button.setAccessibleName(self.tr("New chat"))
        layout.addWidget(self.new_button)
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
        self.list.setMouseTracking(True)   # the row under the pointer shows its "⋯"
        self.list.setItemDelegate(_RowDelegate(self.list))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.viewport().installEventFilter(self)
        layout.addWidget(self.list, 1)

        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(lambda: self.search_changed.emit(self.search.text()))
        self.search.textChanged.connect(lambda _text: self._debounce.start())
        self.new_button.clicked.connect(self.new_chat_requested)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemChanged.connect(self._item_edited)
        self._filling = False
        self._shown: list[tuple] = []   # (header, chat id, text) of each row, as filled

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
        if current is not None and not self._filling:
            self.chat_selected.emit(current.data(ID_ROLE))

    def _item_edited(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self._shown = []   # the row no longer shows what was filled in: the next fill rebuilds it
            self.renamed.emit(item.data(ID_ROLE), item.text().strip())

    # -- a chat's menu ---------------------------------------------------------------------
    def menu_for(self, chat_id: str) -> QMenu:
        """Rename, Export as each export format (store/export.py), Delete, for the chat `chat_id`."""
        menu = QMenu(self)
        menu.setObjectName("chatMenu")
        menu.addAction(self.tr("Rename"), lambda: self._rename(chat_id))
        for fmt, spec in EXPORT_FORMATS.items():
            menu.addAction(self.tr("Export as {format}…").format(format=spec.name),
                           lambda fmt=fmt: self.export_requested.emit(chat_id, fmt.value))
        menu.addSeparator()
        menu.addAction(self.tr("Delete"), lambda: self.delete_requested.emit(chat_id))
        return menu

    def _rename(self, chat_id: str) -> None:
        item = next((i for i in self._chat_items() if i.data(ID_ROLE) == chat_id), None)
        if item is not None:
            self.list.setCurrentItem(item)
            self.list.editItem(item)

    def _open_menu(self, item: QListWidgetItem, at: QPoint) -> None:
        menu = self.menu_for(item.data(ID_ROLE))
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.list.viewport().mapToGlobal(at))

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is not None and not item.data(HEADER_ROLE):
            self._open_menu(item, pos)

    def eventFilter(self, watched, event):   # noqa: N802 (Qt override)
        """A press on a row's "⋯" opens its menu (and neither selects nor starts editing it)."""
        if watched is self.list.viewport() and event.type() in (QEvent.Type.MouseButtonPress,
                                                                 QEvent.Type.MouseButtonDblClick):
            if event.button() == Qt.MouseButton.LeftButton:
                pos = event.position().toPoint()
                item = self.list.itemAt(pos)
                if item is not None and not item.data(HEADER_ROLE):
                    rect = self.list.visualItemRect(item)
                    if more_rect(rect).contains(pos):
                        self._open_menu(item, QPoint(more_rect(rect).left(), rect.bottom()))
                        return True
        return super().eventFilter(watched, event)

"""The conversation: one MessageWidget per message of the chat's active path, in a scroll area.

Streaming touches only the streaming message's widget; the rest of the chat is not re-rendered.
"""
from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP, QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from chatgui.store import Chat

from chatgui.ui.chat.message_widget import MessageWidget

# Lines of ~80-90 characters are read most easily; wider windows get margins instead of longer lines.
MAX_COLUMN_WIDTH = 800
MIN_SIDE_MARGIN = 12
PIN_MS = 400
EMPTY_HINT = QT_TRANSLATE_NOOP("ConversationView", "Ask anything. Enter sends, Shift+Enter starts a new line.")


class ConversationView(QScrollArea):
    regenerate_requested = Signal(str)
    edit_submitted = Signal(str, str)
    sibling_requested = Signal(str, int)
    replay_requested = Signal(str)
    branch_requested = Signal(str, int, int)
    inspect_requested = Signal(str, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("conversationView")
        self.setAccessibleName(self.tr("Conversation"))
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._content = QWidget()
        self._content.setObjectName("conversationContent")
        self._layout = QVBoxLayout(self._content)
        self._layout.setContentsMargins(12, 12, 12, 12)
        self._layout.setSpacing(10)
        self._hint = QLabel(self.tr(EMPTY_HINT))
        self._hint.setObjectName("emptyConversationHint")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setEnabled(False)
        self._hint.setWordWrap(True)
        self._layout.addWidget(self._hint, 1)
        self._layout.addStretch(1)
        # Room below the last message, so that flipping to a shorter version can keep the
        # navigator under the pointer (see keep_at); none otherwise.
        self._bottom_room = QWidget()
        self._bottom_room.setFixedHeight(0)
        self._layout.addWidget(self._bottom_room)
        self.setWidget(self._content)
        self._widgets: dict[str, MessageWidget] = {}
        self._order: list[str] = []      # message ids, top to bottom
        self._chat: Chat | None = None
        self._stick_to_bottom = True
        self._pin: tuple[str, int] | None = None   # (message id, viewport y) held in place, see keep_at
        self._pin_timer = QTimer(self, singleShot=True, interval=PIN_MS)
        self._pin_timer.timeout.connect(self._release_pin)
        self.token_view = False
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._remember_position)
        bar.rangeChanged.connect(self._follow_bottom)
        # Floats over the bottom of the conversation while the user reads further up.
        self.jump_button = QToolButton(self.viewport())
        self.jump_button.setObjectName("jumpToLatestButton")
        self.jump_button.setText(self.tr("↓ Latest"))
        self.jump_button.setToolTip(self.tr("Jump to the latest message"))
        self.jump_button.setAccessibleName(self.tr("Jump to the latest message"))
        self.jump_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.jump_button.clicked.connect(self.jump_to_latest)
        self.jump_button.hide()

    # -- whole chat ------------------------------------------------------------------------
    def show_chat(self, chat: Chat | None, busy: bool = False, scroll_to_end: bool = True) -> None:
        """Show the chat's active path. Widgets of the messages that did not change are kept,
        so sending a message or flipping a late answer does not re-render the whole chat."""
        path = chat.active_path() if chat else []
        keep = 0
        if chat is not None and chat is self._chat:
            for old_id, message in zip(self._order, path):
                widget = self._widgets[old_id]
                if (old_id != message.id or widget.sibling_index != chat.sibling_index(message.id)
                        or widget.text() != message.content):
                    break
                keep += 1
        self.setUpdatesEnabled(False)
        try:
            for old_id in self._order[keep:]:
                self._remove(old_id)
            self._order = self._order[:keep]
            for old_id, message in zip(self._order, path):
                self._widgets[old_id].update_info(message.meta)
                self._widgets[old_id].set_busy(busy)
            for message in path[keep:]:
                self._add(chat, message, busy)
            self._hint.setVisible(not path)
        finally:
            self.setUpdatesEnabled(True)
        self._chat = chat
        if scroll_to_end:
            self._pin = None
            self._bottom_room.setFixedHeight(0)
            self._stick_to_bottom = True
            self.scroll_to_bottom()

    def _add(self, chat: Chat, message, busy: bool) -> None:
        widget = MessageWidget(message, chat.sibling_index(message.id), self._content,
                               token_source=lambda mid=message.id: chat.token_data(mid))
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.edit_submitted.connect(self.edit_submitted)
        widget.sibling_requested.connect(self.sibling_requested)
        widget.replay_requested.connect(self.replay_requested)
        widget.branch_requested.connect(self.branch_requested)
        widget.inspect_requested.connect(self.inspect_requested)
        widget.set_busy(busy)
        widget.set_token_view(self.token_view)
        self._layout.insertWidget(self._layout.count() - 2, widget)   # before the stretch and the room
        self._widgets[message.id] = widget
        self._order.append(message.id)

    def _remove(self, message_id: str) -> None:
        widget = self._widgets.pop(message_id)
        self._layout.removeWidget(widget)
        widget.hide()
        widget.deleteLater()

    # -- single messages -------------------------------------------------------------------
    def widget_for(self, message_id: str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def message_widgets(self) -> list[MessageWidget]:
        return list(self._widgets.values())

    def set_busy(self, busy: bool) -> None:
        for widget in self._widgets.values():
            widget.set_busy(busy)

    def set_token_view(self, on: bool) -> None:
        """Show assistant replies token by token, tinted by probability (see token_view)."""
        self.token_view = bool(on)
        self.setUpdatesEnabled(False)
        try:
            for widget in self._widgets.values():
                widget.set_token_view(self.token_view)
        finally:
            self.setUpdatesEnabled(True)

    # -- layout ----------------------------------------------------------------------------
    def resizeEvent(self, event):   # noqa: N802 (Qt override)
        super().resizeEvent(event)
        width = self.viewport().width()
        side = max(MIN_SIDE_MARGIN, (width - MAX_COLUMN_WIDTH + 1) // 2)
        self._layout.setContentsMargins(side, 12, side, 12)
        self._update_jump_button()

    # -- scrolling -------------------------------------------------------------------------
    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def widget_top(self, message_id: str) -> int | None:
        """Where the message's widget starts, in the viewport's coordinates."""
        widget = self._widgets.get(message_id)
        return widget.mapTo(self.viewport(), QPoint(0, 0)).y() if widget is not None else None

    def keep_at(self, message_id: str, viewport_y: int) -> None:
        """Keep the message starting at viewport_y: after `< >` the navigator stays under the
        pointer, even when the new version is shorter than the old one. The new widget's height
        settles over a few layout passes, so the place is held for PIN_MS."""
        self._pin = (message_id, viewport_y)
        self._stick_to_bottom = False
        self._apply_pin()
        QTimer.singleShot(0, self._apply_pin)
        self._pin_timer.start()

    def _apply_pin(self) -> None:
        widget = self._widgets.get(self._pin[0]) if self._pin else None
        if widget is None:
            return
        self._layout.activate()   # a widget just added has no place yet
        bar = self.verticalScrollBar()
        target = widget.y() - self._pin[1]
        if target > bar.maximum():   # not enough below it: make room (it goes with the next message sent)
            self._bottom_room.setFixedHeight(self._bottom_room.height() + target - bar.maximum())
            self._layout.activate()
        bar.setValue(max(0, target))

    def _release_pin(self) -> None:
        self._apply_pin()
        self._pin = None

    def jump_to_latest(self) -> None:
        self._pin = None
        self._stick_to_bottom = True
        self.scroll_to_bottom()

    def _update_jump_button(self) -> None:
        bar = self.verticalScrollBar()
        far = bar.maximum() - bar.value() > max(200, self.viewport().height() // 2)
        button = self.jump_button
        if far:
            button.adjustSize()
            button.move((self.viewport().width() - button.width()) // 2,
                        self.viewport().height() - button.height() - 12)
            button.raise_()
        button.setVisible(far)

    def _remember_position(self, value: int) -> None:
        self._stick_to_bottom = value >= self.verticalScrollBar().maximum() - 24
        self._update_jump_button()

    def _follow_bottom(self, _minimum: int, maximum: int) -> None:
        self._update_jump_button()
        if self._pin is not None:
            self._apply_pin()
            return
        # The content grew (a streaming reply): keep the newest text in sight, unless the user
        # scrolled up to read something.
        if self._stick_to_bottom:
            self.verticalScrollBar().setValue(maximum)

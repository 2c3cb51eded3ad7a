"""The conversation: the chat's active path drawn as MessageWidgets in a scroll area.

Only a window of the path has widgets: the messages on screen plus a margin of about two
screens above and below. Opening a chat of any length draws its end at once; scrolling toward
either edge adds the next batch of messages, and messages far off screen lose their widgets
again, so a 500-turn chat costs what a short one does. Streaming touches only the streaming
message's widget; the rest of the chat is not re-rendered.
"""
from __future__ import annotations

from contextlib import contextmanager

from PySide6.QtCore import QT_TRANSLATE_NOOP, QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from chatgui.session import Chat

from chatgui.ui.chat.message_widget import MessageWidget

# Lines of ~80-90 characters are read most easily; wider windows get margins instead of longer lines.
MAX_COLUMN_WIDTH = 800
MIN_SIDE_MARGIN = 12
PIN_MS = 400
EMPTY_HINT = QT_TRANSLATE_NOOP("ConversationView", "Ask anything. Enter sends, Shift+Enter starts a new line.")
# The drawn window: a chat opens with its last FIRST_BATCH messages; BATCH more are drawn when
# less than FILL_SCREENS screens of drawn text are left above or below the screen, and widgets
# more than DROP_SCREENS screens away are dropped (the gap between the two keeps it from flapping).
FIRST_BATCH = 12
BATCH = 4   # a batch costs ~10-20 ms a message (more with the token view): keep each step short
FILL_SCREENS = 1.0
DROP_SCREENS = 3.0
MIN_DRAWN = FIRST_BATCH


class ConversationView(QScrollArea):
    regenerate_requested = Signal(str)
    edit_submitted = Signal(str, str)
    sibling_requested = Signal(str, int)
    replay_requested = Signal(str)
    branch_requested = Signal(str, int, int)
    inspect_requested = Signal(str, int)
    widgets_changed = Signal()   # messages were drawn or dropped while scrolling

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
        self._chat: Chat | None = None
        self._path: list = []            # the chat's active path, as last shown
        self._lo = 0                     # path index of the first drawn message
        self._order: list[str] = []      # ids of the drawn messages, path[_lo:_lo + len(_order)]
        self._busy = False
        self._fill_timer = QTimer(self, singleShot=True, interval=0)
        self._fill_timer.timeout.connect(self._fill)
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
        self._busy = busy
        keep = self._unchanged_widgets(chat, path)
        self.setUpdatesEnabled(False)
        try:
            if keep is None or (scroll_to_end and len(path) - self._lo - keep > FIRST_BATCH
                                and all(self._droppable(i) for i in self._order)):
                # another chat, or far from the end: draw the end; the rest comes as the user scrolls
                self._remove_from(0)
                self._lo = max(0, len(path) - FIRST_BATCH)
                scroll_to_end = scroll_to_end or keep is None
            else:
                self._remove_from(keep)
            self._path = path
            self._chat = chat
            # the user reads an earlier message (a flipped version): draw what follows it
            stop = len(path) if scroll_to_end else min(len(path), self._hi() + FIRST_BATCH)
            for old_id in self._order:
                self._widgets[old_id].update_info(chat.messages[old_id].meta)
                self._widgets[old_id].set_busy(busy)
            for message in path[self._hi():stop]:
                self._add(message)
            self._hint.setVisible(not path)
        finally:
            self.setUpdatesEnabled(True)
        if scroll_to_end:
            self._pin = None
            self._bottom_room.setFixedHeight(0)
            self._stick_to_bottom = True
            self.scroll_to_bottom()
        self._schedule_fill()

    def _unchanged_widgets(self, chat: Chat | None, path: list) -> int | None:
        """How many of the drawn widgets, from the top, still show the path's message as it is;
        None when nothing can be kept (another chat, or the path changed above the drawn part)."""
        if chat is None or chat is not self._chat or len(path) < self._lo or any(
                path[i].id != self._path[i].id for i in range(self._lo)):
            return None
        keep = 0
        for old_id, message in zip(self._order, path[self._lo:]):
            widget = self._widgets[old_id]
            if (old_id != message.id or widget.sibling_index != chat.sibling_index(message.id)
                    or widget.text() != message.content):
                break
            keep += 1
        return keep

    def _hi(self) -> int:
        """The path index after the last drawn message."""
        return self._lo + len(self._order)

    def _make(self, message) -> MessageWidget:
        chat = self._chat
        widget = MessageWidget(message, chat.sibling_index(message.id), self._content,
                               token_source=lambda mid=message.id: chat.token_data(mid))
        widget.regenerate_requested.connect(self.regenerate_requested)
        widget.edit_submitted.connect(self.edit_submitted)
        widget.sibling_requested.connect(self.sibling_requested)
        widget.replay_requested.connect(self.replay_requested)
        widget.branch_requested.connect(self.branch_requested)
        widget.inspect_requested.connect(self.inspect_requested)
        widget.set_busy(self._busy)
        widget.set_token_view(self.token_view)
        self._widgets[message.id] = widget
        return widget

    def _add(self, message) -> None:
        """Draw the message after the last drawn one."""
        widget = self._make(message)
        self._layout.insertWidget(self._layout.count() - 2, widget)   # before the stretch and the room
        widget.show()   # now, not on a later turn of the event loop: _settle measures it
        self._order.append(message.id)

    def _remove(self, message_id: str) -> None:
        widget = self._widgets.pop(message_id)
        self._layout.removeWidget(widget)
        widget.hide()
        widget.deleteLater()

    def _remove_from(self, index: int) -> None:
        """Drop the widgets of the drawn messages from `index` (into the drawn ones) on."""
        for old_id in self._order[index:]:
            self._remove(old_id)
        del self._order[index:]

    # -- drawing more, dropping what is far away -------------------------------------------
    def _schedule_fill(self) -> None:
        if not self._fill_timer.isActive():
            self._fill_timer.start()

    def _fill(self) -> None:
        """One step toward "the screen plus a margin has widgets, nothing far away has": one batch
        drawn or dropped at each edge, then again on the next turn of the event loop, so a
        long scroll never blocks the window for more than a batch."""
        if self._chat is None or self._pin is not None or not self.isVisible():
            return
        self._layout.activate()
        bar = self.verticalScrollBar()
        screen = max(1, self.viewport().height())
        top, bottom = bar.value(), bar.value() + screen
        changed = False
        if self._lo > 0 and top < FILL_SCREENS * screen:
            self._prepend(min(BATCH, self._lo))
            changed = True
        elif self._hi() < len(self._path) and self._content_bottom() - bottom < FILL_SCREENS * screen:
            self.setUpdatesEnabled(False)
            for message in self._path[self._hi():self._hi() + BATCH]:
                self._add(message)
            self.setUpdatesEnabled(True)
            changed = True
        if len(self._order) > MIN_DRAWN:
            top = bar.value()   # again: drawing above moved it
            changed |= self._drop_far_above(top - DROP_SCREENS * screen)
            changed |= self._drop_far_below(bar.value() + screen + DROP_SCREENS * screen)
        if changed:
            self.widgets_changed.emit()
            self._schedule_fill()

    def _content_bottom(self) -> int:
        last = self._widgets[self._order[-1]] if self._order else None
        return last.geometry().bottom() if last is not None else 0

    def _prepend(self, count: int) -> None:
        """Draw `count` more messages above the first drawn one; what is on screen stays put."""
        anchor = self._widgets[self._order[0]] if self._order else None
        with self._kept_in_place(anchor, unless_at_bottom=True):
            messages = self._path[self._lo - count:self._lo]
            for i, message in enumerate(messages):
                widget = self._make(message)
                self._layout.insertWidget(1 + i, widget)   # after the empty-chat hint
                widget.show()
            self._order[:0] = [m.id for m in messages]
            self._lo -= count

    @contextmanager
    def _kept_in_place(self, anchor: MessageWidget | None, unless_at_bottom: bool = False):
        """Change what is drawn above `anchor`, then scroll by as much as it moved, so that what
        is on screen stays where it was (not when following the bottom, if unless_at_bottom)."""
        bar = self.verticalScrollBar()
        before, value = (anchor.y() if anchor is not None else 0), bar.value()
        self.setUpdatesEnabled(False)
        try:
            yield
            self._settle()
            if anchor is not None and not (unless_at_bottom and self._stick_to_bottom):
                bar.setValue(value + anchor.y() - before)
        finally:
            self.setUpdatesEnabled(True)

    def _settle(self) -> None:
        """Lay the content out now, so that positions can be read and the scroll value kept
        (Qt would do it on a later turn of the event loop, after a visible jump)."""
        content = self._content
        height = content.heightForWidth(content.width())
        if height < 0:
            height = content.sizeHint().height()
        content.resize(content.width(), max(height, self.viewport().height()))
        self._layout.activate()

    def _droppable(self, message_id: str) -> bool:
        widget = self._widgets[message_id]
        return widget.editor is None and not widget.isAncestorOf(self.focusWidget())

    def _far_run(self, ids: list[str], is_far) -> int:
        """How many of `ids`, from the first, are far away and may go: at most a batch, and never
        fewer than MIN_DRAWN widgets left."""
        count = 0
        for message_id in ids[:max(0, min(BATCH, len(self._order) - MIN_DRAWN))]:
            if not (is_far(self._widgets[message_id]) and self._droppable(message_id)):
                break
            count += 1
        return count

    def _drop_far_above(self, limit: int) -> bool:
        """Drop the widgets that end above `limit`; what is on screen stays put."""
        count = self._far_run(self._order, lambda w: w.geometry().bottom() < limit)
        if count == 0:
            return False
        with self._kept_in_place(self._widgets[self._order[count]]):
            for old_id in self._order[:count]:
                self._remove(old_id)
            del self._order[:count]
            self._lo += count
        return True

    def _drop_far_below(self, limit: int) -> bool:
        """Drop the widgets that start below `limit` (they come back when the user scrolls down)."""
        count = self._far_run(self._order[::-1], lambda w: w.y() > limit)
        if count == 0:
            return False
        self._remove_from(len(self._order) - count)
        return True

    # -- single messages -------------------------------------------------------------------
    def widget_for(self, message_id: str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def message_widgets(self) -> list[MessageWidget]:
        """The drawn messages, top to bottom."""
        return [self._widgets[message_id] for message_id in self._order]

    def drawn_range(self) -> tuple[int, int]:
        """Which part of the active path has widgets: (first index, index after the last)."""
        return self._lo, self._hi()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
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
        self._schedule_fill()

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

    def reveal(self, message_id: str, query: str) -> bool:
        """Show the message with `query` marked in it, its first match a third of the way down
        the view (a search result: the chat opens there, not at its end). False if the message
        is not on the path shown."""
        ids = [m.id for m in self._path]
        if message_id not in ids:
            return False
        if message_id not in self._widgets:   # far from what is drawn: draw from just above it
            index = ids.index(message_id)
            self.setUpdatesEnabled(False)
            try:
                self._remove_from(0)
                self._lo = max(0, index - 1)
                for message in self._path[self._lo:min(len(self._path), index + FIRST_BATCH)]:
                    self._add(message)
            finally:
                self.setUpdatesEnabled(True)
            self.widgets_changed.emit()
        self._layout.activate()
        offset = self._widgets[message_id].highlight(query) or 0
        self.keep_at(message_id, self.viewport().height() // 3 - offset)
        return True

    def clear_highlights(self) -> None:
        for widget in self._widgets.values():
            widget.highlight("")

    def _release_pin(self) -> None:
        self._apply_pin()
        self._pin = None
        self._schedule_fill()

    def jump_to_latest(self) -> None:
        self._pin = None
        self._stick_to_bottom = True
        if self._hi() < len(self._path):   # the end is not drawn (the user read far above it)
            self.show_chat(self._chat, self._busy)
            self.widgets_changed.emit()
        self.scroll_to_bottom()

    def _update_jump_button(self) -> None:
        bar = self.verticalScrollBar()
        far = (bar.maximum() - bar.value() > max(200, self.viewport().height() // 2)
               or self._hi() < len(self._path))
        button = self.jump_button
        if far:
            button.adjustSize()
            button.move((self.viewport().width() - button.width()) // 2,
                        self.viewport().height() - button.height() - 12)
            button.raise_()
        button.setVisible(far)

    def _remember_position(self, value: int) -> None:
        self._stick_to_bottom = (value >= self.verticalScrollBar().maximum() - 24
                                 and self._hi() == len(self._path))
        self._update_jump_button()
        self._schedule_fill()

    def _follow_bottom(self, _minimum: int, maximum: int) -> None:
        self._update_jump_button()
        self._schedule_fill()
        if self._pin is not None:
            self._apply_pin()
            return
        # The content grew (a streaming reply): keep the newest text in sight, unless the user
        # scrolled up to read something.
        if self._stick_to_bottom:
            self.verticalScrollBar().setValue(maximum)

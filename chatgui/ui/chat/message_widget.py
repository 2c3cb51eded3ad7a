"""One message in the conversation: who said it, the text, and what can be done with it."""
from __future__ import annotations


from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (QFrame, QGraphicsOpacityEffect, QHBoxLayout, QLabel, QMenu, QPlainTextEdit, QPushButton,
                               QTextEdit, QToolButton, QVBoxLayout, QWidget)

from chatgui.common.records import FinishReason, ReplyMeta, TokenRecord
from chatgui.models.naming import display_name
from chatgui.session import Message, MessageMeta, Role

from chatgui.ui.chat.action_icons import action_icon
from chatgui.ui.common.i18n import preset_label
from chatgui.ui.chat.markdown_body import MarkdownBody
from chatgui.ui.chat.markdown_split import code_blocks
from chatgui.ui.chat.thinking import ThinkingSection, split_thinking
from chatgui.ui.common.elided_label import ElidedLabel
from chatgui.ui.common.safe_text import SafeTextBrowser, render_plain
from chatgui.ui.explain.token_view import TokenBody, TokenPopup
from chatgui.ui.documents.message_parts import DocumentParts, cite_linker
from chatgui.ui.tools.tool_cards import show_saved_calls

SEARCH_MARK = "#fde047"   # a found search word's background

# Showing a huge pasted message in full would freeze the view for seconds; the full text stays
# in the chat (copy, export and the model all get it).
MAX_SHOWN_USER_CHARS = 100_000


def _tool_button(text: str, tip: str, name: str, icon: str = "") -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setAccessibleName(tip)
    button.setObjectName(name)
    button.setAutoRaise(True)
    if icon:   # shown as an icon; the text stays for screen readers and the tooltip says what it does
        button.setIcon(action_icon(icon))
        button.setIconSize(QSize(16, 16))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    return button


class SiblingNavigator(QWidget):
    """`< 2/3 >`: flip between regenerated answers or edited versions of a question."""

    moved = Signal(int)   # -1 or +1

    def __init__(self, index: int, count: int, parent=None):
        super().__init__(parent)
        self.setObjectName("siblingNavigator")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.prev_button = _tool_button("<", self.tr("Previous version"), "previousVersionButton")
        self.next_button = _tool_button(">", self.tr("Next version"), "nextVersionButton")
        self.label = QLabel(f"{index + 1}/{count}")
        self.label.setObjectName("versionLabel")
        self.label.setAccessibleName(self.tr("Version"))
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < count - 1)
        self.prev_button.clicked.connect(lambda: self.moved.emit(-1))
        self.next_button.clicked.connect(lambda: self.moved.emit(+1))
        for w in (self.prev_button, self.label, self.next_button):
            layout.addWidget(w)

    def text(self) -> str:
        return f"< {self.label.text()} >"


class MessageWidget(QFrame):
    regenerate_requested = Signal(str)     # message id
    edit_submitted = Signal(str, str)      # message id, new text
    sibling_requested = Signal(str, int)   # message id, -1 / +1
    replay_requested = Signal(str)         # message id
    branch_requested = Signal(str, int, int)   # message id, token index, token id to continue with
    inspect_requested = Signal(str, int)   # message id, token index

    def __init__(self, message: Message, sibling_index: tuple[int, int] = (0, 1), parent=None,
                 token_source=None):
        super().__init__(parent)
        # where the reply's token records come from (read from disk only once the token view shows them)
        self._token_source = token_source
        self._loaded_tokens: list | None = None   # read from disk for the token view (see shown_tokens)
        self.message_id = message.id
        self.sibling_index = sibling_index
        self.role = message.role
        self._text = message.content
        self.setObjectName("userMessage" if message.role == Role.USER else "assistantMessage")
        self.setAccessibleName(self.tr("Your message") if message.role == Role.USER else self.tr("Assistant message"))
        self.setFrameShape(QFrame.Shape.StyledPanel if message.role == Role.USER else QFrame.Shape.NoFrame)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        self._header_row = self._header(message, sibling_index)
        layout.addLayout(self._header_row)
        self.thinking: ThinkingSection | None = None   # a reasoning model's <think> part
        self._link_citations = cite_linker(message.meta.sources or [])   # a reply's [n] link to its sources
        self.body = self._make_body(message)
        if self.thinking is not None:
            layout.addWidget(self.thinking)
        layout.addWidget(self.body)
        self.documents = DocumentParts(message.role, message.meta, self)   # attached files, sources
        self._show_documents(message.content)
        self.meta: MessageMeta = message.meta   # the message's own meta: token data arrives in it
        self.token_body: TokenBody | None = None
        self.token_view = False
        self.token_popup: TokenPopup | None = None
        self._busy = False
        self.editor: QPlainTextEdit | None = None
        actions = self._actions()
        if self.role == Role.USER:   # in the bubble's header line: no empty band under the question
            self._header_row.insertWidget(2, actions)
        else:
            layout.addWidget(actions)
        self._layout = layout
        self.update_info(message.meta)
        if isinstance(message.meta, ReplyMeta):
            show_saved_calls(self, message.meta)   # the reply's tool calls, as cards above its text

    # -- building --------------------------------------------------------------------------
    def _header(self, message: Message, sibling_index: tuple[int, int]) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        who = QLabel(self.tr("You") if message.role == Role.USER else self.tr("Assistant"))
        who.setObjectName("roleLabel")
        font = who.font()
        font.setBold(True)
        who.setFont(font)
        row.addWidget(who)
        # Elided: a long model name or many details must never widen the conversation.
        self.info_label = ElidedLabel()
        self.info_label.setObjectName("messageInfo")
        self.info_label.setEnabled(False)   # drawn in the palette's muted text colour
        row.addWidget(self.info_label, 1)
        index, count = sibling_index
        self.navigator = None
        if count > 1:
            self.navigator = SiblingNavigator(index, count, self)
            self.navigator.moved.connect(lambda step: self.sibling_requested.emit(self.message_id, step))
            row.addWidget(self.navigator)
        return row

    def _make_body(self, message: Message) -> QWidget:
        if message.role == Role.ASSISTANT:
            return MarkdownBody(self._answer_part(message.content, insert=False), self)
        browser = SafeTextBrowser(self)
        shown = message.content
        if len(shown) > MAX_SHOWN_USER_CHARS:
            hidden = len(shown) - MAX_SHOWN_USER_CHARS
            shown = shown[:MAX_SHOWN_USER_CHARS] + "\n\n" + self.tr("[… {count} more characters not shown]").format(
                count=f"{hidden:,}")
        browser.set_document(render_plain(shown))
        return browser

    def _show_documents(self, text: str) -> None:
        if self.role == Role.ASSISTANT:
            row = self.documents.reply_text_changed(text, self)
            if row is not None:
                self.layout().insertWidget(self.layout().indexOf(self.body) + 1, row)
            self.documents.hook_links(self.body.browsers())
        elif self.documents.widget is not None:
            self.layout().insertWidget(self.layout().indexOf(self.body), self.documents.widget)

    def _actions(self) -> QWidget:
        """The action icons: shown while the pointer is over the message or one of them has the
        keyboard focus (Tab reaches them); their place is kept, so nothing jumps on hover."""
        self.action_bar = QWidget(self)
        self.action_bar.setObjectName("messageActions")
        self._action_opacity = QGraphicsOpacityEffect(self.action_bar)
        self._action_opacity.setOpacity(0.0)
        self.action_bar.setGraphicsEffect(self._action_opacity)
        row = QHBoxLayout(self.action_bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self.copy_button = _tool_button(self.tr("Copy"), self.tr("Copy message"), "copyButton", "copy")
        self.copy_button.clicked.connect(self.copy_text)
        row.addWidget(self.copy_button)
        self.copy_code_button = self.regenerate_button = self.edit_button = self.replay_button = None
        self._code_blocks: list[str] = []
        if self.role == Role.ASSISTANT:
            self.copy_code_button = _tool_button(self.tr("Copy code"), self.tr("Copy code"), "copyCodeButton", "code")
            self.copy_code_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            self.copy_code_button.clicked.connect(self._copy_only_code_block)
            row.addWidget(self.copy_code_button)
            self.regenerate_button = _tool_button(self.tr("Regenerate"), self.tr("Regenerate answer"),
                                                  "regenerateButton", "regenerate")
            self.regenerate_button.clicked.connect(lambda: self.regenerate_requested.emit(self.message_id))
            row.addWidget(self.regenerate_button)
            self.replay_button = _tool_button(self.tr("Replay"),
                                              self.tr("Replay: regenerate with the recorded settings and seed"),
                                              "replayButton", "replay")
            self.replay_button.clicked.connect(lambda: self.replay_requested.emit(self.message_id))
            row.addWidget(self.replay_button)
            self._update_code_menu()
        else:
            self.edit_button = _tool_button(self.tr("Edit"), self.tr("Edit and resend"), "editButton", "edit")
            self.edit_button.clicked.connect(self.start_editing)
            row.addWidget(self.edit_button)
        row.addStretch(1)
        for button in self.action_bar.findChildren(QToolButton):
            button.installEventFilter(self)
        return self.action_bar

    def actions_shown(self) -> bool:
        return self._action_opacity.opacity() > 0.5

    def _show_actions(self, on: bool) -> None:
        self._action_opacity.setOpacity(1.0 if on else 0.0)

    def enterEvent(self, event):   # noqa: N802 (Qt override)
        super().enterEvent(event)
        self._show_actions(True)

    def leaveEvent(self, event):   # noqa: N802 (Qt override)
        super().leaveEvent(event)
        focused = self.action_bar.focusWidget()
        self._show_actions(focused is not None and focused.hasFocus())

    def eventFilter(self, watched, event):   # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.FocusIn:
            self._show_actions(True)
        elif event.type() == QEvent.Type.FocusOut and not self.underMouse():
            self._show_actions(False)
        return False

    # -- content ---------------------------------------------------------------------------
    def text(self) -> str:
        return self._text

    def shown_text(self) -> str:
        body = self.body
        return body.plain_text() if isinstance(body, MarkdownBody) else body.toPlainText()

    def highlight(self, query: str) -> int | None:
        """Mark every place `query` is in the text (ignoring case; "" takes the marks away);
        returns how far below the widget's top the first one is, or None if there is none."""
        browsers = self.body.browsers() if isinstance(self.body, MarkdownBody) else [self.body]
        marked = QTextCharFormat()
        marked.setBackground(QColor(SEARCH_MARK))   # the same in light and dark: dark text on yellow
        marked.setForeground(QColor("#1f2328"))
        first = None
        for browser in browsers:
            selections, doc = [], browser.document()
            cursor = doc.find(query) if query else QTextCursor()
            while not cursor.isNull():
                selection = QTextEdit.ExtraSelection()
                selection.cursor, selection.format = cursor, marked
                selections.append(selection)
                if first is None:
                    first = browser.mapTo(self, browser.cursorRect(cursor).topLeft()).y()
                cursor = doc.find(query, cursor)
            browser.setExtraSelections(selections)
        return first

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self._text)

    def stream_text(self, text: str) -> None:
        self._text = text
        self.body.stream_text(self._answer_part(text))

    def begin_stream(self, text: str) -> None:
        self._text = text
        self.body.begin_stream(self._answer_part(text))
        self.update_info(self.meta)   # a reply saved mid-stream is not "interrupted" while it still streams
        self.set_busy(True)

    def show_streamed(self, text: str) -> None:
        """The reply so far: starts streaming into this widget if it was not yet."""
        if self.is_streaming():
            self.stream_text(text)
        else:
            self.begin_stream(text)

    def is_streaming(self) -> bool:
        """A reply being written into this widget (questions never stream)."""
        return isinstance(self.body, MarkdownBody) and self.body.streaming

    def last_render_seconds(self) -> float:
        return self.body.last_render_seconds
        self._refresh_token_view()   # streaming text is shown as Markdown; the tokens when it ends

    def end_stream(self, text: str) -> None:
        self._text = text
        self.body.end_stream(self._answer_part(text))
        self._show_documents(text)
        self._update_code_menu()
        self._refresh_token_view()

    def _answer_part(self, text: str, insert: bool = True) -> str:
        """Show a <think>…</think> part in the Thinking section; the rest is the answer."""
        split = split_thinking(text)
        if split.thinking is None:
            if self.thinking is not None:
                self.thinking.hide()
            return self._link_citations(split.answer)
        if self.thinking is None:
            self.thinking = ThinkingSection(self)
            if insert:
                self._layout.insertWidget(self._layout.indexOf(self.body), self.thinking)
        self.thinking.show()
        self.thinking.show_thinking(split.thinking, split.done)
        return self._link_citations(split.answer)

    def update_info(self, meta: MessageMeta) -> None:
        self.meta = meta
        if not isinstance(meta, ReplyMeta):   # a question: nothing to say under it
            self.info_label.setText("")
            return
        parts = []
        if meta.model_path:
            # the one display name, as in the status bar (also for replies recorded with the GGUF's own name)
            parts.append(display_name(meta.model_path, meta.model_sha256))
        elif meta.model:
            parts.append(meta.model)
        if meta.tokens is not None:
            approx = "≈" if meta.is_remote and not meta.usage_reported else ""
            parts.append(self.tr("{count} tokens").format(count=f"{approx}{meta.tokens}"))
        if meta.tokens_per_second:
            parts.append(f"{meta.tokens_per_second:.1f} tok/s")
        if meta.compare_preset:
            parts.append(self.tr("{preset} preset").format(preset=preset_label(meta.compare_preset)))
        if meta.branch is not None:
            parts.append(self.tr("branched at token {number}").format(number=meta.branch.index + 1))
        if meta.replay_of:
            parts.append(self.tr("replay"))
        if meta.finish_reason is FinishReason.CANCELLED:
            parts.append(self.tr("stopped"))
        elif meta.finish_reason is FinishReason.LENGTH and not meta.partial:
            parts.append(self.tr("cut at the token limit"))
        elif meta.partial and not self.is_streaming():
            parts.append(self.tr("interrupted"))   # saved mid-reply, and the app never finished it
        elif meta.error:
            parts.append(self.tr("failed"))
        self.info_label.setText(" · ".join(parts))

    def set_busy(self, busy: bool) -> None:
        """While any reply streams, nothing may start another one."""
        self._busy = busy
        for button in (self.regenerate_button, self.edit_button, self.replay_button):
            if button is not None:
                button.setEnabled(not busy)

    def _update_code_menu(self) -> None:
        if self.copy_code_button is None:
            return
        blocks = code_blocks(self._text)
        self.copy_code_button.setVisible(bool(blocks))
        menu = self.copy_code_button.menu()
        if menu is not None:
            self.copy_code_button.setMenu(None)
            menu.deleteLater()
        self._code_blocks = blocks
        if len(blocks) > 1:   # several: pick one from a menu; one: the button copies it
            menu = QMenu(self.copy_code_button)
            for i, block in enumerate(blocks, 1):
                first = next((line for line in block.splitlines() if line.strip()), "")[:40]
                menu.addAction(self.tr("Block {number}: {first_line}").format(number=i, first_line=first),
                               lambda b=block: QGuiApplication.clipboard().setText(b))
            self.copy_code_button.setMenu(menu)

    def _copy_only_code_block(self) -> None:
        if len(self._code_blocks) == 1:
            QGuiApplication.clipboard().setText(self._code_blocks[0])

    # -- token view ------------------------------------------------------------------------
    def set_token_view(self, on: bool) -> None:
        """Show the reply token by token, tinted by probability (assistant replies with token data)."""
        self.token_view = bool(on)
        self._refresh_token_view()

    def shown_tokens(self) -> list[TokenRecord]:
        """The reply's token records: those in its meta (a reply made in this session), else
        read from disk once the token view wants them and kept while this widget lives."""
        data = self.meta.token_data if isinstance(self.meta, ReplyMeta) else None
        if data is None and self._loaded_tokens is None and self.token_view and self._token_source is not None:
            self._loaded_tokens = self._token_source()
        if data is None:
            data = self._loaded_tokens
        return [t for t in data if isinstance(t, TokenRecord)] if isinstance(data, list) else []

    def _refresh_token_view(self) -> None:
        if self.role != Role.ASSISTANT:
            return
        tokens = self.shown_tokens()
        show = self.token_view and bool(tokens) and not self.is_streaming()
        if show:
            if self.token_body is None:
                self.token_body = TokenBody(self)
                self.token_body.browser.token_clicked.connect(self.show_token_popup)
                self._layout.insertWidget(self._layout.indexOf(self.body) + 1, self.token_body)
            self.token_body.show_tokens(tokens, self._text)
        if self.token_body is not None:
            self.token_body.setVisible(show)
        self.body.setVisible(not show)

    def show_token_popup(self, index: int, pos=None) -> TokenPopup | None:
        tokens = self.shown_tokens()
        if not 0 <= index < len(tokens):
            return None
        if self.token_popup is not None:
            self.token_popup.close()
            self.token_popup.deleteLater()
        popup = TokenPopup(index, tokens[index], can_branch=not self._busy, parent=self)
        popup.branch_requested.connect(lambda i, tid: self.branch_requested.emit(self.message_id, i, tid))
        popup.inspect_requested.connect(lambda i: self.inspect_requested.emit(self.message_id, i))
        self.token_popup = popup
        popup.adjustSize()
        if pos is None:
            pos = self.token_body.mapToGlobal(self.token_body.rect().center()) if self.token_body else self.mapToGlobal(
                self.rect().center())
        screen = QGuiApplication.screenAt(pos) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        x = min(max(pos.x() + 8, area.left()), area.right() - popup.width())
        y = pos.y() + 4 if pos.y() + 4 + popup.height() <= area.bottom() else pos.y() - 24 - popup.height()
        popup.move(x, max(y, area.top()))
        popup.show()
        return popup

    # -- editing a question ----------------------------------------------------------------
    def start_editing(self) -> None:
        if self.editor is not None:
            return
        self.editor = QPlainTextEdit(self._text, self)
        self.editor.setObjectName("editMessageInput")
        self.editor.setAccessibleName(self.tr("Edit message"))
        self.editor.setMinimumHeight(80)
        buttons = QHBoxLayout()
        send = QPushButton(self.tr("Send"), self)
        send.setObjectName("editSendButton")
        cancel = QPushButton(self.tr("Cancel"), self)
        cancel.setObjectName("editCancelButton")
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(send)
        self._edit_row = buttons
        self.body.hide()
        self._layout.insertWidget(2, self.editor)
        self._layout.insertLayout(3, buttons)
        send.clicked.connect(self._submit_edit)
        cancel.clicked.connect(self.stop_editing)
        self.editor.setFocus(Qt.FocusReason.OtherFocusReason)

    def stop_editing(self) -> None:
        if self.editor is None:
            return
        while self._edit_row.count():
            item = self._edit_row.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._layout.removeItem(self._edit_row)
        self.editor.deleteLater()
        self.editor = None
        self.body.show()

    def _submit_edit(self) -> None:
        text = self.editor.toPlainText() if self.editor else ""
        if text.strip():
            self.stop_editing()
            self.edit_submitted.emit(self.message_id, text)

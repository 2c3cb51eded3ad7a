"""A reply's tool calls, one folded card each (tool, arguments, result, time, error state),
above the reply's text. Built from the reply's meta (ReplyMeta.tool_calls and tool_results,
paired by session.tool_exchanges) when a chat is drawn, and filled live while a reply calls tools."""
from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from chatgui.common.records import ReplyMeta
from chatgui.common.tools import ToolCall, ToolResult
from chatgui.session import tool_exchanges
from chatgui.ui.common.fold import FoldSection

from .consent_dialog import pretty_arguments

DENIED_TEXT = "The user did not allow this call."   # engine/tool_loop.DENIED, what the model reads


class ToolCallCard(QFrame):
    def __init__(self, call: ToolCall, result: ToolResult | None = None, running: bool = False, parent=None):
        super().__init__(parent)
        self.setObjectName("toolCallCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.call = call
        self.result: ToolResult | None = None
        body = QWidget(self)
        inner = QVBoxLayout(body)
        inner.setContentsMargins(8, 0, 4, 4)
        inner.addWidget(QLabel(self.tr("Arguments")))
        self.arguments = self._text(pretty_arguments(call.arguments), "toolCallArguments")
        inner.addWidget(self.arguments)
        self.result_label = QLabel(self.tr("Result"))
        inner.addWidget(self.result_label)
        self.result_text = self._text("", "toolCallResult")
        inner.addWidget(self.result_text)
        self.fold = FoldSection("", body, "toolCallFold", open_=False, parent=self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.fold)
        self.state = "running" if running else "pending"
        self.set_result(result) if result is not None else self._show_title()

    @staticmethod
    def _text(text: str, name: str) -> QPlainTextEdit:
        box = QPlainTextEdit(text)
        box.setObjectName(name)
        box.setReadOnly(True)
        _fit_height(box)
        return box

    def set_result(self, result: ToolResult) -> None:
        self.result = result
        if result.content == DENIED_TEXT:
            self.state = "denied"
        else:
            self.state = "error" if result.is_error else "done"
        self.result_text.setPlainText(result.content)
        _fit_height(self.result_text)
        self.result_label.setText(self.tr("Error") if self.state == "error" else self.tr("Result"))
        self._show_title()

    def set_stopped(self) -> None:
        if self.result is None:
            self.state = "stopped"
            self._show_title()

    def title(self) -> str:
        return self.fold.toggle.text()

    def _show_title(self) -> None:
        name = self.call.name
        seconds = ""
        if self.result is not None and self.state in ("done", "error"):
            seconds = f" · {self.result.seconds:.2f} s" if self.result.seconds >= 0.01 else " · < 0.01 s"
        text = {"running": self.tr("Calling {tool}…"), "pending": self.tr("{tool}: no result"),
                "done": self.tr("Called {tool}"), "error": self.tr("{tool} failed"),
                "denied": self.tr("{tool}: denied, not run"),
                "stopped": self.tr("{tool}: stopped")}[self.state].format(tool=name) + seconds
        self.fold.toggle.setText("🔧 " + text)
        self.fold.toggle.setAccessibleName(text)
        self.setProperty("toolState", self.state)


def _fit_height(box: QPlainTextEdit, most_lines: int = 8) -> None:
    """As tall as its text (up to most_lines; longer text scrolls): a one-line result is one line."""
    lines = min(max(1, box.document().blockCount()), most_lines)
    frame = 2 * box.frameWidth() + int(box.document().documentMargin() * 2)
    box.setFixedHeight(lines * box.fontMetrics().lineSpacing() + frame + 2)


class ToolCards(QWidget):
    """The cards of one reply, in call order."""
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("toolCards")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 4)
        self._layout.setSpacing(2)
        self.cards: dict[str, ToolCallCard] = {}

    def add_call(self, call: ToolCall, result: ToolResult | None = None, running: bool = False) -> ToolCallCard:
        card = self.cards.get(call.id)
        if card is None:
            card = ToolCallCard(call, result, running, self)
            self.cards[call.id] = card
            self._layout.addWidget(card)
        elif result is not None:
            card.set_result(result)
        return card

    def set_result(self, result: ToolResult) -> None:
        card = self.cards.get(result.call_id)
        if card is not None:
            card.set_result(result)

    def stop_running(self) -> None:
        for card in self.cards.values():
            card.set_stopped()


def cards_of(message_widget, create: bool = True) -> ToolCards | None:
    """The cards in a MessageWidget, made (above the reply's text) on first use."""
    cards = message_widget.findChild(ToolCards, "toolCards")
    if cards is None and create:
        cards = ToolCards(message_widget)
        layout = message_widget.layout()
        layout.insertWidget(layout.indexOf(message_widget.body), cards)
    return cards


def show_saved_calls(message_widget, meta: ReplyMeta) -> None:
    """A drawn message's calls from its saved records (nothing when it made none)."""
    saved = tool_exchanges(meta)
    if saved:
        cards = cards_of(message_widget)
        for call, result in saved:
            cards.add_call(call, result)

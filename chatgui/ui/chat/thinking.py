"""Reasoning models (Qwen3, DeepSeek-R1 style) write their thinking inside <think>…</think>
before the answer (gpt-oss: in its harmony analysis channel, common/harmony.py). It is shown as
a "Thinking" section that can be unfolded; it is open while the model thinks and folds once the
answer starts."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget

from chatgui.common.harmony import is_harmony, split_harmony
from chatgui.ui.common.safe_text import SafeTextBrowser, render_markdown

OPEN, CLOSE = "<think>", "</think>"


@dataclass
class Split:
    thinking: str | None   # None: the reply has no thinking part
    answer: str
    done: bool             # the thinking part has ended (the answer has begun)


def split_thinking(text: str) -> Split:
    if is_harmony(text):                      # gpt-oss: the analysis channel is the thinking
        h = split_harmony(text)
        return Split(h.thinking, h.answer, h.done)
    stripped = text.lstrip()
    if stripped.startswith(OPEN):
        rest = stripped[len(OPEN):]
        end = rest.find(CLOSE)
        if end < 0:
            return Split(rest.strip(), "", False)
        return Split(rest[:end].strip(), rest[end + len(CLOSE):].lstrip(), True)
    end = text.find(CLOSE)
    if end >= 0 and OPEN not in text[:end]:   # the template opened <think> in the prompt (DeepSeek-R1)
        return Split(text[:end].strip(), text[end + len(CLOSE):].lstrip(), True)
    return Split(None, text, True)


class ThinkingSection(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("thinkingSection")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        self.toggle = QToolButton(self)
        self.toggle.setObjectName("thinkingToggle")
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setAccessibleName(self.tr("Show or hide the model's thinking"))
        self.browser = SafeTextBrowser(self)
        self.browser.setObjectName("thinkingText")
        self.browser.setEnabled(False)   # drawn in the muted text colour: it is not the answer
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.browser)
        self.toggle.toggled.connect(self._set_open)
        self._user_chose = False
        self._done = None
        self.toggle.clicked.connect(lambda: setattr(self, "_user_chose", True))
        self._set_open(False)

    def show_thinking(self, text: str, done: bool) -> None:
        self.browser.set_document(render_markdown(text))
        if done != self._done:
            self._done = done
            self.toggle.setText(self.tr("Thinking") if done else self.tr("Thinking…"))
            if not self._user_chose:
                self.toggle.setChecked(not done)   # open while it thinks, folded once the answer starts

    def is_open(self) -> bool:
        return self.toggle.isChecked()

    def _set_open(self, on: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.browser.setVisible(on)

"""Compare: the next reply written twice, side by side, with two sampling presets.

The model is single-threaded, so reply A is written first, then reply B (each streams into its
column). Both use the same seed and the same other settings (maximum length, stop strings), so
only the preset differs. The user keeps one, both (as candidates `< 1/2 >` of the chat's reply),
or neither.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QVBoxLayout)

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import FinishReason
from chatgui.session.compare import ComparedReply, compared_reply
from chatgui.session.replies import read_finished
from chatgui.common.samplers import SamplerStage, stages_on
from chatgui.common.types import PRESETS, SamplingSettings

from chatgui.ui.backends.engine_client import connect_reply
from chatgui.ui.common.safe_text import SafeTextBrowser, render_markdown
from chatgui.ui.common.i18n import preset_label, translate
from chatgui.ui.settings.panel import PRESET_FIELDS

DEFAULT_PAIR = ("Precise", "Creative")


def preset_sampling(base: dict, preset: str, seed: int) -> dict:
    """`base` with the preset's sampling fields and the given seed."""
    p = PRESETS[preset]
    return SamplingSettings.from_dict(base).with_(**{f: getattr(p, f) for f in PRESET_FIELDS}, seed=seed).to_dict()


def describe_stage(stage: SamplerStage, s: dict) -> str:
    """A stage and the value of its first setting, e.g. "Top-k 40" (SamplingSettings dict s)."""
    value = s.get(stage.fields[0].name, stage.fields[0].default)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{translate('SettingsPanel', stage.label)} {shown}"


def describe_sampling(s: dict) -> str:
    """The stages a SamplingSettings dict turns on, in the order they apply."""
    return " · ".join(describe_stage(stage, s) for stage in stages_on(s))


@dataclass
class Side:
    name: str
    combo: QComboBox
    settings_label: QLabel
    text: SafeTextBrowser            # the reply as Markdown (as tall as its text; the scroll area scrolls)
    scroll: QScrollArea
    status: QLabel
    keep: QPushButton
    request_id: int | None = None
    written: str = ""
    tokens: list = field(default_factory=list)
    result: ComparedReply | None = None   # once finished


class CompareDialog(QDialog):
    keep_requested = Signal(object)   # [session.compare.ComparedReply, ...]: the replies to keep

    def __init__(self, engine, messages: list[PromptMessage], base_sampling: dict, question: str,
                 presets: tuple[str, str] = DEFAULT_PAIR, parent=None, batched: bool = False):
        """batched: the backend writes several answers at once (capabilities.batched_candidates)."""
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle(self.tr("Compare presets"))
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.engine, self.messages, self.base = engine, list(messages), dict(base_sampling)
        self.seed = self.base.get("seed")
        self.batched = batched
        self.writing: list[Side] = []      # being written now (both at once when batched)
        self._queue: list[Side] = []       # waiting their turn (one after the other otherwise)
        column = QVBoxLayout(self)
        excerpt = " ".join(question.split())
        ask = QLabel(self.tr("Question: {text}").format(text=excerpt[:200] + ("…" if len(excerpt) > 200 else "")))
        ask.setTextFormat(Qt.TextFormat.PlainText)
        ask.setWordWrap(True)
        column.addWidget(ask)
        grid = QGridLayout()
        self.sides: list[Side] = []
        for col, (name, preset) in enumerate(zip("AB", presets)):
            combo = QComboBox()
            combo.setObjectName(f"comparePreset{name}")
            combo.setAccessibleName(self.tr("Preset {name}").format(name=name))
            for key in PRESETS:   # shown translated; the data is the preset's key
                combo.addItem(preset_label(key), key)
            combo.setCurrentIndex(max(combo.findData(preset), 0))
            settings_label = QLabel()
            settings_label.setEnabled(False)
            settings_label.setWordWrap(True)
            text = SafeTextBrowser()
            text.setObjectName(f"compareText{name}")
            text.setAccessibleName(self.tr("Reply {name}").format(name=name))
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(text)
            status = QLabel("")
            keep = QPushButton(self.tr("Keep {name}").format(name=name))
            keep.setObjectName(f"compareKeep{name}")
            keep.setEnabled(False)
            side = Side(name, combo, settings_label, text, scroll, status, keep)
            keep.clicked.connect(lambda _=False, s=side: self.keep([s]))
            combo.currentIndexChanged.connect(lambda _i, s=side: self._show_settings(s))
            header = QHBoxLayout()
            header.addWidget(QLabel(f"<b>{name}</b>"))
            header.addWidget(combo, 1)
            grid.addLayout(header, 0, col)
            grid.addWidget(settings_label, 1, col)
            grid.addWidget(scroll, 2, col)
            row = QHBoxLayout()
            row.addWidget(status, 1)
            row.addWidget(keep)
            grid.addLayout(row, 3, col)
            self.sides.append(side)
            self._show_settings(side)
        grid.setRowStretch(2, 1)
        column.addLayout(grid, 1)
        buttons = QHBoxLayout()
        self.info = QLabel("")
        self.generate_button = QPushButton(self.tr("Generate both"))
        self.generate_button.setObjectName("compareGenerateButton")
        self.stop_button = QPushButton(self.tr("Stop"))
        self.stop_button.setObjectName("compareStopButton")
        self.keep_both_button = QPushButton(self.tr("Keep both"))
        self.keep_both_button.setObjectName("compareKeepBothButton")
        self.keep_both_button.setEnabled(False)
        close = QPushButton(self.tr("Close"))
        buttons.addWidget(self.info, 1)
        for b in (self.generate_button, self.stop_button, self.keep_both_button, close):
            buttons.addWidget(b)
        column.addLayout(buttons)
        self.generate_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.keep_both_button.clicked.connect(lambda: self.keep(self.sides))
        close.clicked.connect(self.reject)
        self.stop_button.setEnabled(False)
        self.resize(920, 560)

    # -- running ---------------------------------------------------------------------------
    def sampling_for(self, side: Side) -> dict:
        return preset_sampling(self.base, side.combo.currentData(), self.seed)

    @property
    def running(self) -> Side | None:
        """A side being written (None once both are done)."""
        return self.writing[0] if self.writing else None

    def start(self) -> None:
        """Write replies A and B with the same seed: at once when batched, else A then B."""
        if self.writing:
            return
        if self.base.get("seed") is None:
            self.seed = random.randrange(1, 2**31)
        self.info.setText(self.tr("Seed {seed} for both").format(seed=self.seed))
        for side in self.sides:
            side.text.set_document(render_markdown(""))
            side.written, side.tokens, side.result, side.request_id = "", [], None, None
            side.status.setText(self.tr("waiting…"))
            side.keep.setEnabled(False)
            side.combo.setEnabled(False)
        self.keep_both_button.setEnabled(False)
        self.generate_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        if self.batched:
            self._start_together()
        else:
            self._queue = list(self.sides)
            self._next()

    def _connect(self, handle) -> None:
        connect_reply(handle, self._on_started, self._on_tokens, self._on_finished, self._on_failed)

    def _start_together(self) -> None:
        """Both replies in one batch: one forward pass a token carries both."""
        each = [self.sampling_for(side) for side in self.sides]
        handles = self.engine.generate_candidates(self.messages, each[0], len(self.sides), self._connect, each=each)
        for side, handle in zip(self.sides, handles):
            side.request_id = handle.request_id
            side.status.setText(self.tr("writing…"))
        self.writing = list(self.sides)

    def _side_done(self, side: Side) -> None:
        if side in self.writing:
            self.writing.remove(side)
            if not self.writing:
                self._next()

    def _next(self) -> None:
        if not self._queue:
            self.writing = []
            self.generate_button.setEnabled(True)
            self.generate_button.setText(self.tr("Generate again"))
            self.stop_button.setEnabled(False)
            for side in self.sides:
                side.combo.setEnabled(True)
            self.keep_both_button.setEnabled(all(s.result is not None for s in self.sides))
            return
        side = self._queue.pop(0)
        self.writing = [side]
        side.status.setText(self.tr("writing…"))
        handle = self.engine.generate(self.messages, self.sampling_for(side), self._connect)
        side.request_id = handle.request_id

    def stop(self) -> None:
        """Stop the reply being written (it is kept as it is) and do not start the other one."""
        for side in self._queue:
            side.status.setText(self.tr("not written"))
        self._queue = []
        for side in self.writing:   # (one of a batch stops the batch)
            if side.request_id is not None:
                self.engine.cancel(side.request_id)

    def _side(self, request_id: int) -> Side | None:
        return next((s for s in self.sides if s.request_id == request_id), None)

    def _on_started(self, request_id: int, info: dict) -> None:
        side = self._side(request_id)
        if side is not None:
            side.status.setText(self.tr("writing… ({count} prompt tokens)").format(
                count=info.get("prompt_tokens", 0)))

    def _on_tokens(self, request_id: int, text: str, records: list) -> None:
        side = self._side(request_id)
        if side is None or side.result is not None:
            return
        side.written += text
        side.tokens.extend(records)
        side.text.set_document(render_markdown(side.written))   # (replies compared are short: all of it each time)
        bar = side.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_finished(self, request_id: int, payload: dict) -> None:
        side = self._side(request_id)
        if side is None or side.result is not None:
            return
        reported, text = read_finished(payload)
        text = text if text is not None else side.written
        side.result = compared_reply(side.combo.currentData(), reported, text, side.tokens, self.sampling_for(side))
        meta = side.result.meta
        side.text.set_document(render_markdown(text))
        tps = meta.tokens_per_second or 0
        stopped = meta.finish_reason is FinishReason.CANCELLED
        done = (self.tr("{count} tokens · {speed} tok/s · stopped") if stopped
                else self.tr("{count} tokens · {speed} tok/s"))
        side.status.setText(done.format(count=meta.tokens or 0, speed=f"{tps:.1f}"))
        side.keep.setEnabled(bool(text))
        self._side_done(side)

    def _on_failed(self, request_id: int, _kind: str, message: str) -> None:
        side = self._side(request_id)
        if side is None or side.result is not None:
            return
        side.status.setText(message)
        side.status.setWordWrap(True)
        self._side_done(side)

    # -- results ---------------------------------------------------------------------------
    def keep(self, sides: list[Side]) -> None:
        results = [s.result for s in sides if s.result is not None and s.result.text]
        if results:
            self.keep_requested.emit(results)
            self.accept()

    def _show_settings(self, side: Side) -> None:
        side.settings_label.setText(describe_sampling(preset_sampling(self.base, side.combo.currentData(), 0)))

    def done(self, result: int) -> None:
        self.stop()
        super().done(result)

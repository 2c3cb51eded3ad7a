"""The sampling inspector: a dock that shows the next-token distribution and what sampling does to it.

For the end of the conversation (the first token of the next reply), or for any token of a reply
(picked in the token view), it draws the most likely next tokens as bars: the model's raw
probability (thin bar) and the probability after temperature (thick bar); tokens that survive
top-k, top-p and min-p are highlighted, filtered ones greyed, and the probability each survivor
is finally drawn with is written at the right.

The numbers come from the engine thread (InspectorWorker): the logits of a position are computed
once and cached there, and moving a sampling slider only re-applies the sampling functions. The
GUI never waits: requests are queued signals, rapid slider moves are coalesced by a short timer,
and results that are no longer the newest are dropped by request id.
"""
from __future__ import annotations

import html
from typing import Callable

from PySide6.QtCore import QT_TRANSLATE_NOOP, QObject, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy,
                               QToolTip, QVBoxLayout, QWidget)

from chatgui.session import Chat, Role

from chatgui.common.samplers import SAMPLER_STAGES, StageKind, stages_on

from chatgui.ui.explain.compare import describe_sampling, describe_stage
from chatgui.ui.common.i18n import translate
from chatgui.ui.settings.panel import PREFERRED_WIDTH
from chatgui.ui.explain.inspector_worker import TOP_N, InspectorWorker
from chatgui.ui.explain.token_view import describe_token, percent

COALESCE_MS = 60
ROW_HEIGHT = 22
HEADER_HEIGHT = 20
LABEL_WIDTH = 96
RIGHT_WIDTH = 78


PENALIZED_MARK = "\u21ba"   # ↺
LEGEND = QT_TRANSLATE_NOOP("InspectorDock", "Thin bar: the model's probability. Thick bar: after the repetition "
                           "penalty and temperature; blue if the token survives top-k, top-p and min-p, grey if "
                           "filtered out (✗ says by which). Right: the probability it is drawn with. {mark}: used "
                           "recently, so lowered by the repetition penalty.")


def penalized(row: dict) -> bool:
    return row["penalized"] < row["raw"] * 0.999


def filter_reason(row: dict, sampling: dict) -> str:
    """Why a token cannot be drawn ("" if it can): the first stage that removed it."""
    if row["final"] > 0:
        return ""
    kept = row.get("kept", {})
    for stage in SAMPLER_STAGES:
        if not kept.get(stage.name, True):
            return translate("SettingsPanel", stage.removed_reason or stage.label)
    return translate("SamplingChart", "filtered")


class SamplingChart(QWidget):
    """One row per token: label, raw probability (thin bar), probability after temperature
    (thick bar: highlighted if the token survives the filters, grey if not), final probability."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("samplingChart")
        self.setAccessibleName(self.tr("Next-token probabilities"))
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.rows: list[dict] = []
        self.sampling: dict = {}
        self.chosen_id: int | None = None

    def set_rows(self, rows: list[dict], sampling: dict, chosen_id: int | None = None) -> None:
        self.rows = list(rows)
        self.sampling = dict(sampling)
        self.chosen_id = chosen_id
        self.setFixedHeight(self.sizeHint().height())
        self.update()

    def survivor_ids(self) -> set[int]:
        return {r["id"] for r in self.rows if r["final"] > 0}

    def sizeHint(self) -> QSize:   # noqa: N802 (Qt override)
        return QSize(LABEL_WIDTH + RIGHT_WIDTH + 160, HEADER_HEIGHT + ROW_HEIGHT * max(1, len(self.rows)) + 4)

    def row_at(self, y: int) -> dict | None:
        i = (y - HEADER_HEIGHT) // ROW_HEIGHT
        return self.rows[i] if y >= HEADER_HEIGHT and 0 <= i < len(self.rows) else None

    def paintEvent(self, _event):   # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = QColor(text)
        muted.setAlphaF(0.55)
        accent = pal.color(QPalette.ColorRole.Highlight)
        grey = QColor(text)
        grey.setAlphaF(0.22)
        raw_colour = QColor(text)
        raw_colour.setAlphaF(0.6)
        width = self.width()
        bar_x = LABEL_WIDTH + 6
        bar_w = max(20, width - bar_x - RIGHT_WIDTH - 6)
        small = QFont(self.font())
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.85))
        painter.setFont(small)
        painter.setPen(muted)
        painter.drawText(QRectF(0, 0, LABEL_WIDTH, HEADER_HEIGHT), Qt.AlignmentFlag.AlignVCenter, self.tr("token"))
        painter.drawText(QRectF(bar_x, 0, bar_w, HEADER_HEIGHT), Qt.AlignmentFlag.AlignVCenter,
                         self.tr("probability"))
        painter.drawText(QRectF(width - RIGHT_WIDTH, 0, RIGHT_WIDTH - 4, HEADER_HEIGHT),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.tr("drawn with"))
        if not self.rows:
            return
        scale = max(max(r["raw"], r["temp"]) for r in self.rows) or 1.0
        bold = QFont(self.font())
        bold.setBold(True)
        metrics = QFontMetrics(self.font())
        for i, row in enumerate(self.rows):
            y = HEADER_HEIGHT + i * ROW_HEIGHT
            alive = row["final"] > 0
            chosen = row["id"] == self.chosen_id
            if chosen:
                mark = QColor(accent)
                mark.setAlphaF(0.15)
                painter.fillRect(QRectF(0, y, width, ROW_HEIGHT), mark)
            painter.setFont(bold if chosen else self.font())
            painter.setPen(text if alive else muted)
            label = describe_token(row["text"]) + (f" {PENALIZED_MARK}" if penalized(row) else "")
            label = metrics.elidedText(label, Qt.TextElideMode.ElideMiddle, LABEL_WIDTH - 4)
            painter.drawText(QRectF(2, y, LABEL_WIDTH - 2, ROW_HEIGHT), Qt.AlignmentFlag.AlignVCenter, label)
            painter.fillRect(QRectF(bar_x, y + 3, max(1.0, bar_w * row["raw"] / scale), 4), raw_colour)
            painter.fillRect(QRectF(bar_x, y + 9, max(1.0, bar_w * row["temp"] / scale), ROW_HEIGHT - 12),
                             accent if alive else grey)
            painter.setFont(bold if alive else small)
            painter.setPen(text if alive else muted)
            right = percent(row["final"]) if alive else "✗ " + filter_reason(row, self.sampling)
            if chosen:
                right = "▶ " + right
            painter.drawText(QRectF(width - RIGHT_WIDTH, y, RIGHT_WIDTH - 4, ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, right)
        painter.end()

    def event(self, event):
        if event.type() == event.Type.ToolTip:
            row = self.row_at(event.pos().y())
            if row is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.row_tooltip(row), self)
            return True
        return super().event(event)

    def _kept_word(self, kept: bool) -> str:
        return self.tr("kept") if kept else self.tr("removed")

    def row_tooltip(self, row: dict) -> str:
        s = self.sampling
        lines = [self.tr("“{token}”  (token {id}, rank {rank})").format(
                     token=describe_token(row["text"]), id=row["id"], rank=row["rank"]),
                 self.tr("model: {p}").format(p=percent(row["raw"]))]
        on = stages_on(s)
        for kind, key in ((StageKind.PENALTY, "penalized"), (StageKind.SHAPE, "temp")):
            stages = [describe_stage(stage, s) for stage in on if stage.kind is kind]
            if stages:
                lines.append(self.tr("after {stages}: {p}").format(stages=", ".join(stages), p=percent(row[key])))
        kept = row.get("kept", {})
        lines += [f"{describe_stage(stage, s)}: {self._kept_word(kept.get(stage.name, True))}"
                  for stage in on if stage.kind is StageKind.FILTER]
        lines.append(self.tr("drawn with probability {p}").format(p=percent(row["final"])))
        if row["id"] == self.chosen_id:
            lines.append(self.tr("this token was drawn in the reply"))
        return "\n".join(lines)


class _InspectorBody(QWidget):
    """Asks for no more width than the settings panel beside it: the side column is as wide as its
    widest tab wishes, so a wider wish here moved the conversation each time the tab was shown."""

    def sizeHint(self) -> QSize:   # noqa: N802 (Qt override)
        hint = super().sizeHint()
        hint.setWidth(min(hint.width(), PREFERRED_WIDTH))
        return hint


class InspectorDock(QDockWidget):
    back_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.tr("Sampling inspector"))
        self.setObjectName("samplingInspector")
        self.setAccessibleName(self.tr("Sampling inspector"))
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        body = _InspectorBody()
        column = QVBoxLayout(body)
        column.setContentsMargins(6, 6, 6, 6)
        self.position_label = QLabel("")
        self.position_label.setObjectName("inspectorPosition")
        self.position_label.setWordWrap(True)
        self.position_label.setTextFormat(Qt.TextFormat.PlainText)
        column.addWidget(self.position_label)
        row = QHBoxLayout()
        self.back_button = QPushButton(self.tr("Back to the next reply"))
        self.back_button.setObjectName("inspectorBackButton")
        self.back_button.setToolTip(self.tr("Inspect the first token of the next reply instead of a token of this one"))
        self.back_button.clicked.connect(self.back_requested)
        self.back_button.hide()
        row.addWidget(self.back_button)
        row.addStretch(1)
        column.addLayout(row)
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("inspectorSummary")
        self.summary_label.setWordWrap(True)
        column.addWidget(self.summary_label)
        legend = html.escape(self.tr(LEGEND).format(mark=PENALIZED_MARK))
        self.legend_label = QLabel(f"<small>{legend}</small>")
        self.legend_label.setObjectName("inspectorLegend")
        self.legend_label.setWordWrap(True)
        column.addWidget(self.legend_label)
        self.chart = SamplingChart()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.chart)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        column.addWidget(scroll, 1)
        self.message_label = QLabel("")
        self.message_label.setObjectName("inspectorMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setEnabled(False)
        column.addWidget(self.message_label)
        # (Empty word-wrapped labels can ask for thousands of pixels; as a tab beside the settings
        # that would widen the whole window.)
        body.setMinimumWidth(260)
        for label in (self.position_label, self.summary_label, self.legend_label, self.message_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setWidget(body)
        self.setMinimumWidth(280)

    def show_data(self, data: dict) -> None:
        s = data["sampling"]
        shown = len(data["rows"])
        self.summary_label.setText(describe_sampling(s) + "\n" + self.tr(
            "{survivors} of {vocab} tokens can be drawn; the {shown} most likely are shown ({mass} of the sampling "
            "probability).").format(survivors=f"{data['survivors']:,}", vocab=f"{data['vocab']:,}", shown=shown,
                                    mass=percent(min(1.0, data["shown_final_mass"]))))
        self.chart.set_rows(data["rows"], s, data.get("chosen_id"))
        self.message_label.setText("")

    def show_position(self, description: str, inspecting_a_token: bool) -> None:
        """What is being inspected; Back is offered while it is a token of a reply."""
        self.position_label.setText(description)
        self.back_button.setVisible(inspecting_a_token)

    def show_nothing(self, why: str) -> None:
        """Nothing to inspect (yet): say why, clear the numbers."""
        self.show_position(why, False)
        self.clear_numbers()

    def clear_numbers(self) -> None:
        self.summary_label.setText("")
        self.chart.set_rows([], {})

    def show_message(self, text: str) -> None:
        """A line under the chart: waiting, or why the numbers could not be computed."""
        self.message_label.setText(text)


class SamplingInspector(QObject):
    """Decides what to inspect, asks the engine thread, and shows the answer in the dock."""

    def __init__(self, engine, sampling: Callable[[], dict], parent=None):
        super().__init__(parent)
        self.engine = engine
        self.sampling = sampling
        self.dock = InspectorDock()
        self.worker = InspectorWorker(engine.worker, self)
        self.worker.explained.connect(self._on_explained)
        self.worker.explain_failed.connect(self._on_failed)
        self.chat: Chat | None = None
        self.target: tuple[str, int] | None = None     # (message id, token index); None: the next reply
        self.busy = False
        self.request_id = 0
        self.data: dict | None = None                   # the newest result shown
        self._next_id = 0
        self._timer = QTimer(self, singleShot=True, interval=COALESCE_MS)
        self._timer.timeout.connect(self.request_now)
        self.dock.back_requested.connect(self.inspect_end)
        self.dock.visibilityChanged.connect(lambda visible: visible and self.schedule())

    # -- what to inspect -------------------------------------------------------------------
    def set_chat(self, chat: Chat | None) -> None:
        if chat is not self.chat:
            self.target = None
        self.chat = chat
        self.schedule()

    def inspect_token(self, chat: Chat, message_id: str, index: int) -> None:
        self.chat = chat
        self.target = (message_id, index)
        self.schedule()

    def inspect_end(self) -> None:
        self.target = None
        self.schedule()

    def set_busy(self, busy: bool) -> None:
        """While a reply streams the engine is busy: ask when it is done."""
        self.busy = busy
        if not busy:
            self.schedule()

    def schedule(self) -> None:
        self._timer.start()   # restarts: a burst of slider moves makes one request

    def position(self) -> dict | None:
        """The request for the current target, with a "description"; None if there is nothing to inspect."""
        chat = self.chat
        path = chat.active_path() if chat is not None else []
        if self.target is not None:
            message_id, index = self.target
            message = chat.messages.get(message_id) if chat is not None else None
            tokens = chat.token_data(message_id) if message is not None else None
            if (message is not None and message.id in {m.id for m in path} and tokens
                    and 0 <= index < len(tokens) and message.parent_id is not None):
                ids = [t.id for t in tokens]
                drawn = describe_token(tokens[index].text)
                return {"messages": chat.to_messages_for_model(upto=message.parent_id, tool_turns=False),
                        "prefix_ids": ids[:index], "chosen_id": ids[index], "message_id": message_id, "index": index,
                        "dropped_messages": message.reply_meta.dropped_messages,
                        "description": self.tr("Token {number} of this reply: “{token}” was drawn (▶). The "
                                               "distribution it was drawn from, under the current settings:").format(
                                                   number=index + 1, token=drawn)}
            self.target = None
        question = next((m for m in reversed(path) if m.role == Role.USER), None)
        if question is None:
            return None
        excerpt = " ".join(question.content.split())
        excerpt = excerpt[:60] + ("…" if len(excerpt) > 60 else "")
        return {"messages": chat.to_messages_for_model(upto=question.id, tool_turns=False), "prefix_ids": [],
                "chosen_id": None,
                "message_id": None, "index": None,
                "description": self.tr("First token of the next reply to “{question}”, under the current "
                                       "settings:").format(question=excerpt)}

    # -- asking the engine thread ----------------------------------------------------------
    def request_now(self) -> int | None:
        self._timer.stop()
        if not self.dock.isVisible():
            return None
        position = self.position()
        if position is None:
            self.dock.show_nothing(self.tr("Send a message: the inspector then shows how the next token is chosen."))
            return None
        self.dock.show_position(position["description"], self.target is not None)
        if self.busy:
            # The bars on screen were computed for another position (or other settings): under
            # this heading they would be wrong, so they go until the engine is free again.
            self.data = None
            self.dock.clear_numbers()
            self.dock.show_message(self.tr("Waiting for the reply to finish…"))
            return None
        self._next_id += 1
        self.request_id = self._next_id
        self.worker.latest = self.request_id           # the worker skips requests older than this
        request = {k: position.get(k) for k in ("messages", "prefix_ids", "chosen_id", "dropped_messages")}
        request["sampling"] = dict(self.sampling())
        request["top_n"] = TOP_N
        request_id = self.request_id
        self.engine.run(lambda: self.worker.explain(request_id, request))
        return self.request_id

    def _on_explained(self, request_id: int, data: dict) -> None:
        if request_id != self.request_id:
            return   # a newer request is on its way
        self.data = data
        self.dock.show_data(data)

    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id == self.request_id:
            self.dock.show_message(message)

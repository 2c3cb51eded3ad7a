"""The token view: an assistant reply drawn token by token, each tinted by its probability.

The tint is the probability the token was drawn with (after the sampling settings; the model's
own probability for replies recorded before that was stored), from red (unlikely) through
yellow to a faint green (near certain). It is blended into the palette's base colour, so the
text keeps the palette's text colour and stays readable in light and dark themes.

Each token is an anchor `tok:N` (N: its index in the reply's records, TokenRecords). Hovering one shows
its alternatives in a tooltip; clicking opens TokenPopup, which lists them with both
probabilities and offers "Continue with this token" (branch) and "Inspect" (sampling inspector).
Model output is untrusted: every piece of text is HTML-escaped.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QCursor, QGuiApplication, QPalette
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QToolTip, QVBoxLayout,
                               QWidget)

from chatgui.common.records import TokenRecord
from chatgui.ui.common.i18n import translate
from chatgui.ui.common.safe_text import SafeDocument, SafeTextBrowser

TOKEN_SCHEME = "tok"
NEWLINE_MARK = "\u21b5"           # ↵ shown where a token holds a line break (else it could not be seen)
LEGEND_STEPS = (0.05, 0.3, 0.6, 0.95)


# -- colours -------------------------------------------------------------------------------------
def token_probability(record: TokenRecord) -> float:
    """The probability a token was drawn with; the model's own for older replies."""
    return record.shown_prob


def token_background(p: float, base: QColor) -> QColor:
    """Red (p near 0) through yellow to green (p near 1), blended into `base`: uncertain tokens
    stand out strongly, near-certain ones are only faintly tinted."""
    p = min(max(float(p), 0.0), 1.0)
    hue = QColor.fromHsvF(p / 3.0, 0.85, 1.0)          # 0 = red, 1/6 = yellow, 1/3 = green
    alpha = 0.14 + 0.5 * (1.0 - p) ** 1.5
    return QColor.fromRgbF(base.redF() * (1 - alpha) + hue.redF() * alpha,
                           base.greenF() * (1 - alpha) + hue.greenF() * alpha,
                           base.blueF() * (1 - alpha) + hue.blueF() * alpha)


def palette_colours() -> tuple[QColor, QColor]:
    palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)


def shown_piece(text: str) -> str:
    return text.replace("\n", NEWLINE_MARK + "\n")


def describe_token(text: str) -> str:
    """A token's text as a short visible label: spaces, line breaks and tabs made visible."""
    if text == "":
        return "∅"
    return text.replace(" ", "\u2423").replace("\n", NEWLINE_MARK).replace("\t", "\u21e5")


def percent(p: float | None) -> str:
    if p is None:
        return "–"
    if p >= 0.9995:
        return "100%"
    if p >= 0.001:
        return f"{p * 100:.1f}%"
    return "<0.1%" if p > 0 else "0%"


# -- the reply as HTML ---------------------------------------------------------------------------
def token_html(tokens: list, content: str = "", base: QColor | None = None, text: QColor | None = None) -> str:
    """The reply as HTML: one anchor `tok:N` per token that has text, with its tint. Text the
    stream held back (after the last token) is appended untinted."""
    if base is None or text is None:
        base, text = palette_colours()
    fg = text.name()
    parts = []
    joined = ""
    for i, record in enumerate(tokens):
        piece = record.text
        joined += piece
        if not piece:
            continue    # part of a character that the next token completes: nothing to show
        bg = token_background(token_probability(record), base).name()
        parts.append(f'<a href="{TOKEN_SCHEME}:{i}" style="color:{fg}; text-decoration:none">'
                     f'<span style="background-color:{bg}; color:{fg}">{html.escape(shown_piece(piece))}</span></a>')
    if content.startswith(joined) and len(content) > len(joined):
        parts.append(html.escape(content[len(joined):]))
    return f'<div style="white-space:pre-wrap">{"".join(parts)}</div>'


def alternative_rows(record: TokenRecord) -> list[dict]:
    """The token and its alternatives: {"id", "text", "p" (model), "sp" (after the sampling
    settings; None if unknown), "chosen"}, the chosen token first, then by model probability."""
    alts, salts = record.alts, record.sampled_alts
    has_sampled = record.has_sampled
    sampled = {int(a[0]): float(a[2]) for a in salts}
    # Below the 5th listed after-sampling probability, a token's probability is not recorded.
    floor = min(sampled.values()) if len(salts) >= 5 else 0.0
    rows: dict[int, dict] = {}
    chosen = record.id
    rows[chosen] = {"id": chosen, "text": record.text, "p": record.prob,
                    "sp": record.sampled_prob if has_sampled else None, "chosen": True}
    for tid, text, p in alts:
        if int(tid) not in rows:
            rows[int(tid)] = {"id": int(tid), "text": text, "p": float(p), "chosen": False,
                              "sp": sampled.get(int(tid), 0.0 if floor == 0.0 else None) if has_sampled else None}
            if has_sampled and rows[int(tid)]["sp"] is None:
                rows[int(tid)]["below"] = floor   # not among the 5 most likely after sampling
    for tid, text, sp in salts:
        if int(tid) not in rows:
            rows[int(tid)] = {"id": int(tid), "text": text, "p": None, "sp": float(sp), "chosen": False}
        elif rows[int(tid)].get("text") in ("", None):
            rows[int(tid)]["text"] = text
    chosen_row = rows.pop(chosen)
    others = sorted(rows.values(), key=lambda r: (-(r["p"] or 0.0), -(r["sp"] or 0.0)))
    return [chosen_row, *others]


def tooltip_html(index: int, record: TokenRecord) -> str:
    rows = alternative_rows(record)
    head = html.escape(translate("TokenView", "Token {number}").format(number=index + 1))
    lines = [f"<b>{head}</b>: {html.escape(describe_token(record.text))}",
             "<table cellspacing='0' cellpadding='1'><tr><th align='left'>{}</th>"
             "<th align='right'>&nbsp;{}&nbsp;</th><th align='right'>&nbsp;{}</th></tr>".format(
                 *map(html.escape, (translate("TokenView", "token"), translate("TokenView", "model"),
                                    translate("TokenView", "sampled"))))]
    for row in rows:
        name = html.escape(describe_token(row["text"] or ""))
        if row["chosen"]:
            name = f"<b>{name}</b>"
        lines.append(f"<tr><td>{name}</td><td align='right'>{percent(row['p'])}</td>"
                     f"<td align='right'>{_sampled_text(row)}</td></tr>")
    lines.append("</table><i>{}</i>".format(html.escape(translate("TokenView", "Click for more"))))
    return "<qt>" + "".join(lines) + "</qt>"


def _sampled_text(row: dict) -> str:
    if row["sp"] is None:
        return f"<{percent(row['below'])}" if row.get("below") else "–"
    if row["sp"] == 0.0 and not row["chosen"]:
        return translate("TokenView", "filtered out")
    return percent(row["sp"])


# -- widgets -------------------------------------------------------------------------------------
class TokenBrowser(SafeTextBrowser):
    """The reply's tokens. Clicking a token emits token_clicked(index, global position)."""

    token_clicked = Signal(int, QPoint)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("tokenView")
        self.setAccessibleName(self.tr("Reply tokens coloured by probability"))
        self.setMouseTracking(True)
        self.tokens: list = []

    def show_tokens(self, tokens: list, content: str = "") -> None:
        self.tokens = list(tokens)
        doc = SafeDocument(self)
        doc.setHtml(token_html(self.tokens, content))
        self.set_document(doc)

    def token_anchors(self) -> list[tuple[int, QColor]]:
        """(index, background) of every token shown, in order (for tests and accessibility)."""
        found, seen = [], set()
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fmt = it.fragment().charFormat()
                href = fmt.anchorHref()
                if href.startswith(TOKEN_SCHEME + ":") and href not in seen:
                    seen.add(href)
                    found.append((int(href.split(":", 1)[1]), fmt.background().color()))
                it += 1
            block = block.next()
        return found

    def index_at(self, pos) -> int | None:
        href = self.anchorAt(pos)
        if href.startswith(TOKEN_SCHEME + ":"):
            try:
                index = int(href.split(":", 1)[1])
            except ValueError:
                return None
            return index if 0 <= index < len(self.tokens) else None
        return None

    def viewportEvent(self, event):   # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.ToolTip:
            index = self.index_at(event.pos())
            if index is not None:
                QToolTip.showText(event.globalPos(), tooltip_html(index, self.tokens[index]), self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)

    def _open_link(self, url: QUrl) -> None:   # SafeTextBrowser's anchorClicked handler
        if url.scheme() != TOKEN_SCHEME:
            super()._open_link(url)
            return
        try:
            index = int(url.path())
        except ValueError:
            return
        if 0 <= index < len(self.tokens):
            # Just below the clicked line, so that the popup hides as little of the reply as possible.
            at = self.viewport().mapFromGlobal(QCursor.pos())
            line = self.cursorRect(self.cursorForPosition(at))
            self.token_clicked.emit(index, self.viewport().mapToGlobal(QPoint(at.x(), line.bottom())))


class TokenBody(QWidget):
    """The token view of one reply: a small legend and the tokens."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("tokenBody")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        self.legend = QLabel()
        self.legend.setObjectName("tokenLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)   # else its width would be the reply's minimum width
        column.addWidget(self.legend)
        self.browser = TokenBrowser(self)
        column.addWidget(self.browser)

    def show_tokens(self, tokens: list, content: str = "") -> None:
        base, text = palette_colours()
        chips = "".join(f'<span style="background-color:{token_background(p, base).name()}; color:{text.name()}">'
                        f"&nbsp;{percent(p) if p < 0.95 else '≥95%'}&nbsp;</span> " for p in LEGEND_STEPS)
        sampled = any(t.has_sampled for t in tokens)
        legend = (self.tr("Probability each token was drawn with: {chips} · hover or click a token for its "
                          "alternatives") if sampled else
                  self.tr("Probability each token was drawn with (model probability): {chips} · hover or click a "
                          "token for its alternatives"))
        self.legend.setText("<small>{}</small>".format(html.escape(legend).replace("{chips}", chips)))
        self.browser.show_tokens(tokens, content)


class TokenPopup(QFrame):
    """A token's alternatives, with the model's and the after-sampling probabilities, and a
    "Continue with this" button per alternative (branch the reply from there)."""

    branch_requested = Signal(int, int)    # token index, token id
    inspect_requested = Signal(int)        # token index

    def __init__(self, index: int, record: TokenRecord, can_branch: bool = True, parent=None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("tokenPopup")
        self.setAccessibleName(self.tr("Token alternatives"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#tokenPopup { background: palette(window); border: 1px solid palette(dark); "
                           "border-radius: 4px; }")
        self.index = index
        self.rows = alternative_rows(record)
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 8, 10, 8)
        head = html.escape(self.tr("Token {number}").format(number=index + 1))
        title = QLabel(f"<b>{head}</b>: “{html.escape(describe_token(record.text))}”")
        title.setTextFormat(Qt.TextFormat.RichText)
        column.addWidget(title)
        note = self.tr("model: the model's own probability · sampled: after temperature, top-k, top-p, min-p and "
                       "the repetition penalty")
        if not record.has_sampled:
            note = self.tr("model: the model's own probability (this reply was recorded without after-sampling "
                           "values)")
        hint = QLabel(f"<small>{html.escape(note)}</small>")
        hint.setTextFormat(Qt.TextFormat.RichText)
        hint.setWordWrap(True)
        hint.setMaximumWidth(380)
        column.addWidget(hint)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        for col, head in enumerate((self.tr("Token"), self.tr("Model"), self.tr("Sampled"))):
            label = QLabel(f"<b>{html.escape(head)}</b>")
            grid.addWidget(label, 0, col, Qt.AlignmentFlag.AlignRight if col else Qt.AlignmentFlag.AlignLeft)
        self.buttons: dict[int, QPushButton] = {}
        for r, row in enumerate(self.rows, 1):
            name = QLabel()
            name.setTextFormat(Qt.TextFormat.PlainText)
            name.setText(self.tr("{token}   ✓ chosen").format(token=describe_token(row["text"] or ""))
                         if row["chosen"] else describe_token(row["text"] or ""))
            if row["chosen"]:
                font = name.font()
                font.setBold(True)
                name.setFont(font)
            grid.addWidget(name, r, 0)
            grid.addWidget(QLabel(percent(row["p"])), r, 1, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(QLabel(_sampled_text(row)), r, 2, Qt.AlignmentFlag.AlignRight)
            if not row["chosen"]:
                button = QPushButton(self.tr("Continue with this"))
                button.setObjectName("branchButton")
                button.setToolTip(self.tr("Regenerate the reply from here, starting with this token (kept as a new "
                                          "version)"))
                button.setEnabled(can_branch)
                button.clicked.connect(lambda _=False, tid=row["id"]: self._branch(tid))
                grid.addWidget(button, r, 3)
                self.buttons[row["id"]] = button
        column.addLayout(grid)
        row = QHBoxLayout()
        inspect = QPushButton(self.tr("Inspect sampling here"))
        inspect.setObjectName("inspectTokenButton")
        inspect.setToolTip(self.tr("Show this position's next-token distribution in the sampling inspector"))
        inspect.clicked.connect(self._inspect)
        row.addStretch(1)
        row.addWidget(inspect)
        column.addLayout(row)

    def _branch(self, token_id: int) -> None:
        self.close()
        self.branch_requested.emit(self.index, token_id)

    def _inspect(self) -> None:
        self.close()
        self.inspect_requested.emit(self.index)

"""Chips: an attached file above the input (name, pages, tokens, an x to remove it) and on a sent
message (and how it went in: whole or its relevant passages); the numbered sources under a reply
that used passages, each opening a small popup with its passage and a button to open the file."""
from __future__ import annotations

from pathlib import Path

import html

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPlainTextEdit, QSizePolicy,
                               QToolButton, QVBoxLayout, QWidget)

from chatgui.common.records import Attachment
from chatgui.documents import Source

from chatgui.ui.common.elided_label import ElidedLabel
from chatgui.ui.common.i18n import translate

MAX_UNCITED = 5   # sources listed under a reply that cites none (its passages were still what it read)



def chip_text(attachment: Attachment, sent: bool = False) -> str:
    """'report.pdf · 12 pages · 3,400 tokens' (and, once sent, how it went in)."""
    if attachment.mode == "failed":
        reason = attachment.error or translate("DocumentChips", "not readable")
        return translate("DocumentChips", "{name}: {reason}").format(name=attachment.name, reason=reason)
    parts = [attachment.name]
    if attachment.pages:
        pages = translate("DocumentChips", "{count} pages") if attachment.pages != 1 else translate(
            "DocumentChips", "1 page")
        parts.append(pages.format(count=attachment.pages))
    parts.append(translate("DocumentChips", "{count} tokens").format(count=f"{attachment.tokens:,}"))
    if sent:
        parts.append(translate("DocumentChips", "whole") if attachment.mode == "whole" else
                     translate("DocumentChips", "relevant passages ({count})").format(count=attachment.passages))
    return " · ".join(parts)


def source_label(source: Source) -> str:
    if source.page is not None and not source.whole:
        return translate("DocumentChips", "{name}, page {page}").format(name=source.name, page=source.page)
    if source.line_start is not None and not source.whole:
        return translate("DocumentChips", "{name}, line {line}").format(name=source.name, line=source.line_start)
    return source.name


class Chip(QWidget):
    """One file: its label and, above the input, an x that removes it."""
    remove_clicked = Signal()

    def __init__(self, text: str, tip: str = "", removable: bool = False, failed: bool = False, parent=None):
        super().__init__(parent)
        self.setObjectName("attachmentChip")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 1, 2, 1)
        row.setSpacing(2)
        self.label = ElidedLabel(("📎 " if not failed else "⚠ ") + text)   # a long name never widens the window
        self.label.setObjectName("attachmentChipLabel")
        # its whole width when there is room (Ignored would lose it to the row's stretch), elided when not
        self.label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.label.setToolTip(tip)
        row.addWidget(self.label)
        self.remove_button = None
        if removable:
            self.remove_button = QToolButton()
            self.remove_button.setText("✕")
            self.remove_button.setAutoRaise(True)
            self.remove_button.setToolTip(translate("DocumentChips", "Remove this file"))
            self.remove_button.setAccessibleName(translate("DocumentChips", "Remove this file"))
            self.remove_button.clicked.connect(self.remove_clicked)
            row.addWidget(self.remove_button)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet("#attachmentChip { border: 1px solid palette(mid); border-radius: 8px; }")

    def text(self) -> str:
        return self.label.text()


class ChipRow(QWidget):
    """A row of chips (wrapping is not needed: a message rarely has more than a few files)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._layout.addStretch(1)
        self.chips: list[Chip] = []

    def add(self, chip: Chip) -> Chip:
        self._layout.insertWidget(len(self.chips), chip)
        self.chips.append(chip)
        self.show()
        return chip

    def clear(self) -> None:
        for chip in self.chips:
            self._layout.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        self.hide()

    def texts(self) -> list[str]:
        return [c.text() for c in self.chips]


def sent_attachments_row(attachments: list[Attachment], parent=None) -> ChipRow:
    row = ChipRow(parent)
    for a in attachments:
        tip = a.path if a.mode != "retrieved" else translate("DocumentChips", 
            "{path}\nToo long for the context: the passages that best matched the question were sent.").format(
                path=a.path)
        row.add(Chip(chip_text(a, sent=True), tip, failed=a.mode == "failed"))
    return row


class SourcePopup(QDialog):
    """A source's passage, with a button that opens the file (at its page, for a PDF viewer that
    reads '#page=N')."""

    def __init__(self, source: Source, parent=None):
        super().__init__(parent)
        self.source = source
        self.setObjectName("sourcePopup")
        self.setWindowTitle(f"[{source.number}] {source_label(source)}")
        layout = QVBoxLayout(self)
        heading = QLabel(f"[{source.number}] {source_label(source)}")
        heading.setObjectName("sourceHeading")
        layout.addWidget(heading)
        self.passage = QPlainTextEdit(source.text)
        self.passage.setReadOnly(True)
        layout.addWidget(self.passage, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = buttons.addButton(translate("DocumentChips", "Open the file"),
                                             QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(Path(source.path).is_file())
        if not self.open_button.isEnabled():
            self.open_button.setToolTip(translate("DocumentChips", "The file is no longer at {path}").format(
                path=source.path))
        self.open_button.clicked.connect(self.open_file)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(520, 320)

    def open_file(self) -> bool:
        return QDesktopServices.openUrl(QUrl(self.source.uri()))


class SourcesRow(QWidget):
    """'Sources: [1] report.pdf, page 4 · [2] notes.md, line 10' under a reply, wrapped to the
    message's width; a click on one shows its passage. Of a reply that cites none, the first
    MAX_UNCITED shown (and how many more there are)."""

    def __init__(self, sources: list[Source], cited: bool = True, parent=None):
        super().__init__(parent)
        self.setObjectName("replySources")
        self.given = list(sources)
        self.sources = sources if cited else sources[:MAX_UNCITED]
        self.popup: SourcePopup | None = None
        row = QVBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        links = " · ".join(f'<a href="{s.number}">{html.escape(f"[{s.number}] {source_label(s)}")}</a>'
                           for s in self.sources)
        more = len(sources) - len(self.sources)
        if more:
            links += " · " + html.escape(translate("DocumentChips", "{count} more").format(count=more))
        self.label = QLabel(html.escape(translate("DocumentChips", "Sources:")) + " " + links)
        self.label.setObjectName("replySourcesLabel")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.label.setToolTip(translate("DocumentChips", "Show the passage"))
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                           | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.label.linkActivated.connect(lambda href: href.isdigit() and self.show_source(int(href)))
        row.addWidget(self.label)

    def labels(self) -> list[str]:
        return [f"[{s.number}] {source_label(s)}" for s in self.sources]

    def show_source(self, number: int) -> SourcePopup | None:
        source = next((s for s in self.sources if s.number == number), None)
        if source is None:
            return None
        if self.popup is not None:
            self.popup.close()
        self.popup = SourcePopup(source, self.window())
        self.popup.show()
        return self.popup

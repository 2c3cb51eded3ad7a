"""Read-only text views for model output that can never load anything.

Model output is untrusted: raw HTML is shown as text (Markdown is parsed without HTML), images are
replaced by a text placeholder before the document is ever laid out, every resource request is
refused (and recorded, so tests can check that none was made), and links open only on a click,
only for http(s), in the user's browser.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QTimer, QUrl, Qt, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPalette, QTextCursor, QTextDocument
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser

from chatgui.ui.common.code_highlight import highlight_code_blocks
from chatgui.ui.common.i18n import translate

MARKDOWN_FEATURES = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
SAFE_LINK_SCHEMES = ("http", "https")


class SafeDocument(QTextDocument):
    """A document that refuses to load any resource (image, style sheet, local or remote)."""

    refused_urls: list[str] = []   # the latest refused requests, app-wide (tests read it)
    markdown: str | None = None    # the source of a rendered Markdown document (see render_markdown)

    def loadResource(self, kind, url):   # noqa: N802 (Qt override)
        return refuse(url)


def refuse(url) -> None:
    del SafeDocument.refused_urls[:-99]
    SafeDocument.refused_urls.append(url.toString())
    return None


def _strip_images(doc: QTextDocument) -> None:
    """Replace every image with the text "[image: URL]": nothing is fetched, the URL stays visible."""
    found = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.charFormat().isImageFormat():
                found.append((frag.position(), frag.length(), frag.charFormat().toImageFormat().name()))
            it += 1
        block = block.next()
    cursor = QTextCursor(doc)
    for pos, length, name in reversed(found):
        cursor.setPosition(pos)
        cursor.setPosition(pos + length, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(translate("SafeTextBrowser", "[image: {name}]").format(name=name))


def _shade_code_blocks(doc: QTextDocument) -> None:
    """Give code blocks a background from the palette (so it suits light and dark themes)."""
    colour = QGuiApplication.palette().color(QPalette.ColorRole.AlternateBase)
    cursor = QTextCursor(doc)
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        if fmt.nonBreakableLines():
            fmt.setBackground(colour)
            cursor.setPosition(block.position())
            cursor.setBlockFormat(fmt)
        block = block.next()


def render_markdown(text: str, parent=None) -> SafeDocument:
    doc = SafeDocument(parent)
    doc.markdown = text   # rendered again when the theme changes (its code colours come from the palette)
    doc.setMarkdown(text, MARKDOWN_FEATURES)
    _strip_images(doc)
    _shade_code_blocks(doc)
    highlight_code_blocks(doc)
    return doc


def render_plain(text: str, parent=None) -> SafeDocument:
    doc = SafeDocument(parent)
    doc.setPlainText(text)
    return doc


def is_code_block(block) -> bool:
    return block.blockFormat().nonBreakableLines()


class SafeTextBrowser(QTextBrowser):
    """A read-only, frameless text view that is exactly as tall as its text (the conversation
    scrolls, not each message)."""

    link_refused = Signal(str)   # a link that was clicked but not opened (not http/https)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._open_link)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        self.horizontalScrollBar().rangeChanged.connect(self._fit_height)
        self.viewport().setMouseTracking(True)
        self.copy_block_button = None   # made when the pointer first reaches a code block
        self._hovered_code = None
        self.set_document(SafeDocument(self))

    def set_document(self, doc: QTextDocument) -> None:
        """Show `doc` (made by render_markdown/render_plain); the previous one is deleted."""
        old = self.document()
        # Ours to delete only if we set it; Qt deletes the default document itself.
        stale = old if old is not None and old is not doc and old.parent() is self else None
        doc.setParent(self)
        doc.setDocumentMargin(2)
        self.setDocument(doc)
        doc.documentLayout().documentSizeChanged.connect(self._fit_height)
        if stale is not None:
            stale.deleteLater()
        self._fit_height()

    def loadResource(self, kind, url):   # noqa: N802 (Qt override; the document refuses first)
        return refuse(url)

    def changeEvent(self, event):   # noqa: N802 (Qt override)
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._render_again()

    def _render_again(self) -> None:
        """Code blocks' background and syntax colours were taken from the palette when the
        document was rendered: after a theme switch they would keep the old background under
        text drawn in the new colour (light on light), so render the Markdown again."""
        doc = self.document()
        source = getattr(doc, "markdown", None)
        if source is None or not _has_code_block(doc):
            return
        scroll = self.horizontalScrollBar().value()
        self.set_document(render_markdown(source))
        self.horizontalScrollBar().setValue(scroll)

    def _fit_height(self, *_):
        height = math.ceil(self.document().size().height()) + 2 * self.frameWidth()
        bar = self.horizontalScrollBar()
        if bar.maximum() > 0:
            height += bar.sizeHint().height()
        if height != self.height():
            self.setFixedHeight(height)

    def _open_link(self, url: QUrl) -> None:
        if url.scheme().lower() in SAFE_LINK_SCHEMES and url.host():
            QDesktopServices.openUrl(url)
        else:
            self.link_refused.emit(url.toString())

    # -- the copy button on a code block ------------------------------------------------------
    def mouseMoveEvent(self, event):   # noqa: N802 (Qt override)
        super().mouseMoveEvent(event)
        self.hover_at(event.position().toPoint())

    def leaveEvent(self, event):   # noqa: N802 (Qt override)
        super().leaveEvent(event)
        if self.copy_block_button is not None and not self.copy_block_button.underMouse():
            self.copy_block_button.hide()

    def hover_at(self, pos) -> None:
        """The pointer is at `pos` (viewport coordinates): over a code block, show its Copy button
        at the block's top right corner."""
        block = self.cursorForPosition(pos).block()
        if not is_code_block(block):
            if self.copy_block_button is not None:
                self.copy_block_button.hide()
            return
        while block.previous().isValid() and is_code_block(block.previous()):
            block = block.previous()
        self._hovered_code = block
        button = self._copy_button()
        top = self.document().documentLayout().blockBoundingRect(block).top() - self.verticalScrollBar().value()
        button.move(self.viewport().width() - button.width() - 4, int(top) + 2)
        button.show()
        button.raise_()

    def _copy_button(self):
        if self.copy_block_button is None:
            from PySide6.QtWidgets import QToolButton
            button = QToolButton(self.viewport())
            button.setObjectName("copyBlockButton")
            button.setText(self.tr("Copy"))
            button.setToolTip(self.tr("Copy code block"))
            button.setAccessibleName(self.tr("Copy code block"))
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(self._copy_hovered_code)
            button.adjustSize()
            self.copy_block_button = button
        return self.copy_block_button

    def _copy_hovered_code(self) -> None:
        if self._hovered_code is not None and self._hovered_code.isValid():
            QGuiApplication.clipboard().setText(_code_block_text(self._hovered_code))
            button = self.copy_block_button
            button.setText(self.tr("Copied"))
            QTimer.singleShot(1500, button, lambda: button.setText(self.tr("Copy")))   # (not after it is gone)

    def contextMenuEvent(self, event):   # noqa: N802 (Qt override)
        menu = self.createStandardContextMenu(event.pos())
        block = self.cursorForPosition(event.pos()).block()
        if is_code_block(block):
            menu.addSeparator()
            menu.addAction(self.tr("Copy code block"),
                           lambda: QGuiApplication.clipboard().setText(_code_block_text(block)))
        menu.exec(event.globalPos())
        menu.deleteLater()


def _has_code_block(doc: QTextDocument) -> bool:
    block = doc.begin()
    while block.isValid():
        if is_code_block(block):
            return True
        block = block.next()
    return False


def _code_block_text(block) -> str:
    """The text of the run of code-block lines around `block`."""
    first = block
    while first.previous().isValid() and is_code_block(first.previous()):
        first = first.previous()
    lines, b = [], first
    while b.isValid() and is_code_block(b):
        lines.append(b.text())
        b = b.next()
    return "\n".join(lines)

"""The body of an assistant message: Markdown, rendered in bounded time while it streams.

Finished text is one SafeTextBrowser. While streaming, settled segments (see markdown_split)
each get their own browser, rendered once, and only the short tail is re-rendered per update,
so an update costs about the same for the 10,000th token as for the 10th. When the reply ends
the segments are replaced by a single browser for the whole text.
"""
from __future__ import annotations

import time

from PySide6.QtWidgets import QVBoxLayout, QWidget

from chatgui.ui.chat.markdown_split import SegmentSplitter
from chatgui.ui.common.safe_text import SafeTextBrowser, render_markdown

STREAM_CURSOR = " \u258d"   # a block cursor at the end of a streaming reply


class MarkdownBody(QWidget):
    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._browsers: list[SafeTextBrowser] = []
        self._splitter: SegmentSplitter | None = None
        self.last_render_seconds = 0.0
        self.show_markdown(text)

    # -- finished text ---------------------------------------------------------------------
    def show_markdown(self, text: str) -> None:
        self._splitter = None
        self._clear()
        self._add_browser().set_document(render_markdown(text))

    # -- streaming -------------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        return self._splitter is not None

    def begin_stream(self, text: str = "") -> None:
        self._clear()
        self._splitter = SegmentSplitter()
        self._add_browser()   # the tail
        self.stream_text(text)

    def stream_text(self, text: str) -> None:
        """Show `text`, the whole reply so far. Cost: the new settled segments plus the tail."""
        if self._splitter is None:
            self.begin_stream()
        started = time.perf_counter()
        tail = self._browsers[-1]
        for segment in self._splitter.take_settled(text):
            browser = SafeTextBrowser(self)
            browser.set_document(render_markdown(segment))
            self._layout.insertWidget(self._layout.count() - 1, browser)
            self._browsers.insert(len(self._browsers) - 1, browser)
        tail.set_document(render_markdown(self._splitter.tail(text) + STREAM_CURSOR))
        self.last_render_seconds = time.perf_counter() - started

    def end_stream(self, text: str) -> None:
        self.show_markdown(text)

    # -- helpers ---------------------------------------------------------------------------
    def browsers(self) -> list[SafeTextBrowser]:
        return list(self._browsers)

    def plain_text(self) -> str:
        return "\n".join(b.toPlainText() for b in self._browsers)

    def _add_browser(self) -> SafeTextBrowser:
        browser = SafeTextBrowser(self)
        self._layout.addWidget(browser)
        self._browsers.append(browser)
        return browser

    def _clear(self) -> None:
        for browser in self._browsers:
            self._layout.removeWidget(browser)
            browser.hide()
            browser.deleteLater()
        self._browsers = []

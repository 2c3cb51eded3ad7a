"""What a message shows of its documents: the files attached to a question (chips), and under a
reply that used passages its numbered sources, with the reply's [n] linked to them
("cite:N" links: a click shows that source's passage)."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from chatgui.documents import Source, cited_numbers, link_citations
from chatgui.session import MessageMeta, Role, UserMeta

from chatgui.ui.documents.chips import SourcesRow, sent_attachments_row

CITE_SCHEME = "cite:"


def sources_from(items: list[dict]) -> list[Source]:
    """The sources saved with a message (its meta's `sources`); what is not one is left out."""
    sources = []
    for item in items:
        try:
            source = Source.from_dict(item)
        except (TypeError, AttributeError):
            continue
        if isinstance(source.number, int) and isinstance(source.path, str) and isinstance(source.text, str):
            sources.append(source)
    return sources


def cite_linker(items: list[dict]):
    """text -> text with each valid [n] as a link to source n (the identity without sources)."""
    sources = sources_from(items)
    if not sources:
        return lambda text: text
    return lambda text: link_citations(text, sources, lambda s: f"{CITE_SCHEME}{s.number}")


class DocumentParts:
    """Made by the message widget for its message; `widget` is None when there is nothing to show."""

    def __init__(self, role: str, meta: MessageMeta, parent: QWidget):
        self.widget: QWidget | None = None
        self.sources_row: SourcesRow | None = None
        self._all_sources: list[Source] = []
        if isinstance(meta, UserMeta):
            if role == Role.USER and meta.attachments:
                self.widget = sent_attachments_row(meta.attachments, parent)
        else:
            self._all_sources = sources_from(meta.sources or [])

    def reply_text_changed(self, text: str, parent: QWidget):
        """After the reply is complete: the row of the sources it cites (all of them when it cites
        none: the passages were still what it was given). Returns a new widget to add, or None."""
        if not self._all_sources:
            return None
        numbers = cited_numbers(text, self._all_sources)
        cited = [s for s in self._all_sources if s.number in numbers]
        shown = cited or self._all_sources
        if self.sources_row is not None:
            if self.sources_row.given == shown:
                return None
            self.sources_row.hide()
            self.sources_row.deleteLater()
        self.sources_row = SourcesRow(shown, cited=bool(cited), parent=parent)
        self.widget = self.sources_row
        return self.sources_row

    def hook_links(self, browsers) -> None:
        """The reply's [n] links show the source's passage."""
        for browser in browsers:
            if not getattr(browser, "_cites_hooked", False):
                browser.link_refused.connect(self.open_link)
                browser._cites_hooked = True

    def open_link(self, url: str):
        if not url.startswith(CITE_SCHEME) or not url[len(CITE_SCHEME):].isdigit():
            return None
        # a cited number is always in the row (it shows the cited sources)
        return self.sources_row.show_source(int(url[len(CITE_SCHEME):])) if self.sources_row else None

"""HTML to text with the standard library's parser: scripts, styles and other invisible parts
are dropped, block elements start new lines, entities are decoded."""
from __future__ import annotations

from html.parser import HTMLParser

from .text_files import line_passages
from .types import Passage

_SKIP = {"script", "style", "head", "noscript", "template", "svg", "iframe", "object"}
_BLOCK = {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
          "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
          "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul", "title"}


class _TextParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title: list[str] = []
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "title":
            self.in_title = True
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag, attrs):
        if tag in ("br", "hr"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag == "title":
            self.in_title = False
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
        elif not self.skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    title = " ".join("".join(parser.title).split())
    body = "\n".join(line for line in lines if line)
    return f"{title}\n{body}" if title else body


def html_passages(html: str) -> list[Passage]:
    """Line numbers are lines of the extracted text (those of the markup mean little to a reader)."""
    return line_passages(html_to_text(html))

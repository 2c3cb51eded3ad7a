"""Value types of the documents package (no Qt, no torch)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    """A run of a document's text and where it starts: page (1-based, PDF only) and line
    (1-based within the page for PDFs, within the file otherwise; a paragraph for DOCX)."""
    text: str
    page: int | None = None
    line: int | None = None


@dataclass
class Extraction:
    """What reading one file gave: its passages, or a plain reason why it could not be read
    (error is then set and passages is empty). Never an exception."""
    path: str
    kind: str  # "text", "markdown", "code", "csv", "json", "html", "pdf", "docx" or "" when unknown
    passages: list[Passage] = field(default_factory=list)
    pages: int | None = None  # PDFs only
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The whole text, passages joined (what goes into a prompt when it fits)."""
        return "\n".join(p.text for p in self.passages)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to retrieve, with its position for citations."""
    text: str
    page: int | None
    line_start: int | None
    line_end: int | None
    tokens: int  # an estimate (tokens.approx_tokens), for budgets


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk and the file it came from."""
    chunk_id: int
    path: str
    text: str
    page: int | None
    line_start: int | None
    line_end: int | None
    score: float  # higher is better; comparable only within one search


@dataclass(frozen=True)
class FileStatus:
    """One row of a knowledge folder's status list."""
    path: str
    status: str  # "indexed" or "failed"
    reason: str | None  # why it failed, in plain words
    kind: str
    chunks: int
    pages: int | None
    size: int

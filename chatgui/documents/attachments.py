"""Files attached to a message: whole when they fit the token budget, otherwise the passages
most relevant to the question; and the metadata a chip shows (name, pages, tokens, how used).

Usage (any thread but the GUI's: extraction and counting take time):
    attachment = read_attachment(path, count)           # when attached: the chip's token count
    prepared = prepare_attachments([a, ...], question, budget, count)   # when sent
    prepared.prompt  -> the user message to send (numbered sources, asks for [n] citations)
    prepared.chips   -> per file: whole / retrieved / failed, tokens, pages
    prepared.sources -> what [n] in the reply refers to (citations.link_citations)

The knowledge folders' passages go through the same numbering: retrieve_knowledge() returns
Sources for the index; pass them as `extra_sources` so that all sources of a message share
one list [1]..[n].
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .chunking import chunk_passages
from .citations import Source, build_prompt
from .extract import extract
from .index import KnowledgeIndex
from .reader import ReaderProcess
from .tokens import approx_tokens
from .types import Extraction
from .vectors import Embedder

TokenCounter = Callable[[str], int]
# the tokens a source's heading line costs in the prompt ('[3] report.pdf, page 12:')
_HEADING_TOKENS = 12


@dataclass
class AttachmentChip:
    """What the chip on a message shows, and what the chat saves about the file."""
    name: str
    path: str
    kind: str
    tokens: int  # the whole text's tokens (0 when it could not be read)
    pages: int | None = None
    mode: str = "whole"  # "whole", "retrieved" (passages only) or "failed"
    passages: int = 0  # how many passages went in, when retrieved
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AttachmentChip":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Attachment:
    """A file read when it was attached: its text (saved with the chat, so the chat stays
    complete if the file moves) and its chip."""
    extraction: Extraction
    chip: AttachmentChip

    @property
    def text(self) -> str:
        return whole_text(self.extraction)


@dataclass
class PreparedAttachments:
    chips: list[AttachmentChip]
    sources: list[Source]
    prompt: str
    tokens: int  # what the sources add to the prompt (the counter's tokens)
    notes: list[str] = field(default_factory=list)  # e.g. a file that could not be read


def whole_text(extraction: Extraction) -> str:
    """The document's text; a PDF's pages are marked so that the model can name a page."""
    if extraction.kind != "pdf":
        # blank lines were not kept as passages: put them back from the line numbers (code and
        # Markdown read differently without them)
        parts: list[str] = []
        last: int | None = None  # the line the previous passage ended on
        for p in extraction.passages:
            if parts:
                parts.append("\n" * (max(1, p.line - last) if p.line is not None and last is not None else 1))
            parts.append(p.text)
            last = None if p.line is None else p.line + p.text.count("\n")
        return "".join(parts)
    return "\n".join(f"[page {p.page}]\n{p.text}" for p in extraction.passages)


def read_attachment(path: str | os.PathLike, count_tokens: TokenCounter = approx_tokens,
                    reader: ReaderProcess | None = None) -> Attachment:
    """Read an attached file. With a ReaderProcess (reader.py) it is parsed in that child process,
    so a file that crashes or hangs the parser costs the child, not the app."""
    extraction = reader.extract(os.fspath(path)) if reader is not None else extract(path)
    name = Path(extraction.path).name
    if not extraction.ok:
        chip = AttachmentChip(name, extraction.path, extraction.kind, 0, mode="failed", error=extraction.error)
    else:
        chip = AttachmentChip(name, extraction.path, extraction.kind, count_tokens(whole_text(extraction)),
                              pages=extraction.pages)
    return Attachment(extraction, chip)


def prepare_attachments(attachments: Sequence[Attachment], question: str, budget_tokens: int,
                        count_tokens: TokenCounter = approx_tokens, embedder: Embedder | None = None,
                        extra_sources: Sequence[Source] = ()) -> PreparedAttachments:
    """Decide how each readable attachment goes in, within budget_tokens for all of them:
    - everything fits: each file whole;
    - otherwise the smallest files go in whole while they take at most half the budget, and the
      rest of the budget is filled with the passages of the other files that best match the
      question (BM25, fused with vectors when an embedder is given), in order of relevance.
    extra_sources (knowledge folder passages) are numbered after the attachments."""
    chips = [a.chip for a in attachments]
    notes = [f"{a.chip.name}: {a.chip.error}" for a in attachments if a.chip.mode == "failed"]
    readable = [a for a in attachments if a.chip.mode != "failed"]
    total = sum(a.chip.tokens + _HEADING_TOKENS for a in readable)
    if total <= budget_tokens:
        whole, rest = readable, []
    else:
        whole, used = [], 0
        for a in sorted(readable, key=lambda a: a.chip.tokens):
            if used + a.chip.tokens + _HEADING_TOKENS > budget_tokens // 2:
                break
            whole.append(a)
            used += a.chip.tokens + _HEADING_TOKENS
        rest = [a for a in readable if all(a is not w for w in whole)]
    sources: list[Source] = []
    for a in whole:
        a.chip.mode, a.chip.passages = "whole", 0
        sources.append(Source(len(sources) + 1, a.extraction.path, a.text, whole=True))
    used = sum(a.chip.tokens + _HEADING_TOKENS for a in whole)
    if rest:
        picked = _retrieve_passages(rest, question, budget_tokens - used, count_tokens, embedder)
        for a in rest:
            a.chip.mode = "retrieved"
            a.chip.passages = sum(1 for s in picked if s.path == a.extraction.path)
        for s in picked:
            sources.append(Source(len(sources) + 1, s.path, s.text, s.page, s.line_start, s.line_end))
            used += count_tokens(s.text) + _HEADING_TOKENS
    for s in extra_sources:
        sources.append(Source(len(sources) + 1, s.path, s.text, s.page, s.line_start, s.line_end, s.whole))
    return PreparedAttachments(chips, sources, build_prompt(question, sources), used, notes)


def _retrieve_passages(attachments: Sequence[Attachment], question: str, budget: int,
                       count_tokens: TokenCounter, embedder: Embedder | None) -> list[Source]:
    """The best passages of these files for the question, as many as fit the budget; with no
    words to search by (an empty question), each file's passages from its start."""
    with KnowledgeIndex(":memory:") as index:
        for a in attachments:
            chunks = chunk_passages(a.extraction.passages)
            vectors = embedder.embed_documents([c.text for c in chunks]) if embedder and chunks else None
            index.store_file(a.extraction.path, folder_id=None, kind=a.extraction.kind, status="indexed",
                             pages=a.extraction.pages, chunks=chunks, vectors=vectors,
                             model=embedder.name if embedder else None)
        hits = index.search(question, limit=200, embedder=embedder, candidates=200)
        if not hits:
            hits = index.search_in_order(limit=200)
    return _fill(hits, budget, count_tokens)


def retrieve_knowledge(index: KnowledgeIndex, question: str, budget_tokens: int,
                       count_tokens: TokenCounter = approx_tokens, folder_ids: Sequence[int] | None = None,
                       embedder: Embedder | None = None, limit: int = 8) -> list[Source]:
    """Passages of the knowledge folders for a question, best first, within the budget; numbered
    from 1 (prepare_attachments renumbers them after the attachments)."""
    hits = index.search(question, limit=limit, folder_ids=folder_ids, embedder=embedder)
    return _fill(hits, budget_tokens, count_tokens)


def _fill(hits, budget: int, count_tokens: TokenCounter) -> list[Source]:
    picked: list[Source] = []
    used = 0
    for hit in hits:
        if budget - used < _HEADING_TOKENS + 16:
            break
        cost = count_tokens(hit.text) + _HEADING_TOKENS
        if used + cost > budget:
            continue  # a shorter passage further down may still fit
        picked.append(Source(len(picked) + 1, hit.path, hit.text, hit.page, hit.line_start, hit.line_end))
        used += cost
    return picked

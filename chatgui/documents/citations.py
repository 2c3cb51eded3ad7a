"""Numbered sources: the prompt that shows them to the model and asks for [n] citations, and
the reply's [n] turned into links to the file (and page) they came from."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence


@dataclass(frozen=True)
class Source:
    """A passage (or a whole document) shown to the model as [number]."""
    number: int
    path: str
    text: str
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    whole: bool = False  # the document's whole text rather than a retrieved passage

    @property
    def name(self) -> str:
        return Path(self.path).name

    def label(self) -> str:
        """'report.pdf, page 4', 'notes.md, lines 10-14', or the name alone."""
        if self.page is not None and not self.whole:
            return f"{self.name}, page {self.page}"
        if self.line_start is not None and not self.whole:
            if self.line_end and self.line_end != self.line_start:
                return f"{self.name}, lines {self.line_start}-{self.line_end}"
            return f"{self.name}, line {self.line_start}"
        return self.name

    def uri(self) -> str:
        """A file URI; PDF viewers open '#page=N' at that page."""
        uri = Path(self.path).absolute().as_uri()
        return f"{uri}#page={self.page}" if self.page is not None and not self.whole else uri

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Source":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


INSTRUCTIONS = (
    "Answer the question using the numbered sources below. After each statement taken from a source, "
    "cite it with its number in square brackets, like [1] or [2][3]. Cite only the sources given. "
    "If the sources do not contain the answer, say so, and do not invent one."
)


def build_prompt(question: str, sources: Sequence[Source]) -> str:
    """The user message that carries the sources: instructions, each source as '[n] label:'
    followed by its text, then the question. With no sources, the question alone."""
    if not sources:
        return question
    parts = [INSTRUCTIONS, ""]
    for source in sources:
        parts.append(f"[{source.number}] {source.label()}:")
        parts.append(source.text.strip())
        parts.append("")
    parts.append(f"Question: {question.strip()}" if question.strip() else
                 "Question: summarise these sources.")
    return "\n".join(parts)


# [3], [1, 2] or [1-3] not glued to a word (x[1] is code, not a citation)
_CITATION = re.compile(r"(?<![\w\]\\])\[(\d{1,3}(?:\s*[,\-–]\s*\d{1,3})*)\](?!\()|(?<=\])\[(\d{1,3})\](?!\()")
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)


def _numbers(body: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", body):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2:
            low, high = int(bounds[0]), int(bounds[1])
            if 0 < high - low < 20:
                numbers.extend(range(low, high + 1))
                continue
        numbers.extend(int(b) for b in bounds)
    return numbers


def _outside_code(reply: str):
    """(start, end) spans of the reply outside code blocks and code spans."""
    pos = 0
    for match in _CODE.finditer(reply):
        yield pos, match.start()
        pos = match.end()
    yield pos, len(reply)


def cited_numbers(reply: str, sources: Sequence[Source]) -> list[int]:
    """The source numbers the reply cites, in order of first citation, valid ones only."""
    valid = {s.number for s in sources}
    seen: list[int] = []
    for start, end in _outside_code(reply):
        for match in _CITATION.finditer(reply, start, end):
            for n in _numbers(match.group(1) or match.group(2)):
                if n in valid and n not in seen:
                    seen.append(n)
    return seen


def link_citations(reply: str, sources: Sequence[Source],
                   href: Callable[[Source], str] = Source.uri) -> str:
    """The reply with each valid [n] (also [1, 2], [1-3]) as Markdown links to its source:
    '[1]' becomes '[\\[1\\]](href)'. Numbers that name no source and anything inside code
    are left as written."""
    by_number = {s.number: s for s in sources}
    out: list[str] = []
    pos = 0
    for start, end in _outside_code(reply):
        out.append(reply[pos:start])
        segment_pos = start
        for match in _CITATION.finditer(reply, start, end):
            numbers = _numbers(match.group(1) or match.group(2))
            if not numbers or any(n not in by_number for n in numbers):
                continue
            out.append(reply[segment_pos:match.start()])
            out.append("".join(f"[\\[{n}\\]]({href(by_number[n])})" for n in numbers))
            segment_pos = match.end()
        out.append(reply[segment_pos:end])
        pos = end
    out.append(reply[pos:])
    return "".join(out)

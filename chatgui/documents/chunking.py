"""Passages to chunks of about `target` tokens with `overlap` tokens shared by neighbours, so a
sentence cut at a boundary is whole in one of the two. A chunk never spans two pages (its
citation names one page); within a page or a text file it spans lines, and keeps the first and
last line it covers. A chunk's text is the document's own text (line breaks kept), cut at
whitespace; a run without whitespace (CJK text, a long token) is cut every `_MAX_WORD` chars.
"""
from __future__ import annotations

import bisect
import re
from itertools import groupby

from .tokens import approx_tokens
from .types import Chunk, Passage

_MAX_WORD = 64
_WORD = re.compile(r"\S{1,%d}" % _MAX_WORD)


def chunk_passages(passages: list[Passage], target: int = 200, overlap: int = 40) -> list[Chunk]:
    chunks: list[Chunk] = []
    for page, group in groupby(passages, key=lambda p: p.page):
        chunks.extend(_chunk_page(list(group), page, target, overlap))
    return chunks


def _chunk_page(passages: list[Passage], page: int | None, target: int, overlap: int) -> list[Chunk]:
    # One text for the page (or file) with each passage's start line, so a word's line is known
    text_parts, starts, first_lines = [], [], []
    offset = 0
    for passage in passages:
        starts.append(offset)
        first_lines.append(passage.line)
        text_parts.append(passage.text)
        offset += len(passage.text) + 1
    text = "\n".join(text_parts)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(pos: int) -> int | None:
        i = bisect.bisect_right(starts, pos) - 1
        first = first_lines[i]
        if first is None:
            return None
        # lines inside the passage, counted from its start
        return first + bisect.bisect_left(newlines, pos) - bisect.bisect_left(newlines, starts[i])

    words = [(m.start(), m.end(), approx_tokens(m.group())) for m in _WORD.finditer(text)]
    chunks: list[Chunk] = []
    i = 0
    while i < len(words):
        j, size = i, 0
        while j < len(words) and (size < target or j == i):
            size += words[j][2]
            j += 1
        start, end = words[i][0], words[j - 1][1]
        piece = text[start:end]
        chunks.append(Chunk(piece, page, line_at(start), line_at(end - 1), approx_tokens(piece)))
        if j >= len(words):
            break
        # step back over about `overlap` tokens for the next chunk, always moving forward
        back, k = 0, j
        while k > i + 1 and back < overlap:
            k -= 1
            back += words[k][2]
        i = k
    return chunks

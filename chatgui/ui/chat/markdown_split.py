"""Cutting a growing Markdown text into segments that never need rendering again.

While a reply streams, re-rendering all of it on every update would cost O(length) each time and
a long reply would stutter. Instead the text is cut at "settled" places (paragraph breaks outside
code blocks, or line ends inside a long code block) and each settled segment is rendered once;
only the short live tail is re-rendered. Each segment is made self-contained: a code block cut in
two is closed at the end of one segment and reopened at the start of the next. No Qt here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


@dataclass(frozen=True)
class Fence:
    marker: str   # the opening run of backticks or tildes
    opener: str   # the whole opening line (with its language), to reopen the block later


def next_fence_state(fence: Fence | None, line: str) -> Fence | None:
    """The open code fence after `line` (without its newline), given the one before it."""
    m = _FENCE.match(line)
    if fence is None:
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            return Fence(m.group(1), line.strip())
        return None
    if m and m.group(1)[0] == fence.marker[0] and len(m.group(1)) >= len(fence.marker) and not m.group(2).strip():
        return None
    return fence


def code_blocks(text: str) -> list[str]:
    """The contents of the fenced code blocks in `text` (an unclosed last block counts)."""
    blocks, current, fence = [], None, None
    for line in text.split("\n"):
        after = next_fence_state(fence, line)
        if fence is None and after is not None:
            current = []
        elif fence is not None and after is None:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
        fence = after
    if current is not None:
        blocks.append("\n".join(current))
    return blocks


class SegmentSplitter:
    """Tracks how much of a growing text is settled. Feed it the whole text each time.

    `take_settled(text)` returns the Markdown of newly settled segments (render each once);
    `tail(text)` is the Markdown of the rest (re-rendered on every update, kept short).
    """

    def __init__(self, min_chars: int = 1500):
        self.min_chars = min_chars
        self.settled = 0               # characters of the text already handed out as segments
        self.fence: Fence | None = None  # code fence open at `settled`

    def take_settled(self, text: str) -> list[str]:
        out = []
        while True:
            cut = self._find_cut(text)
            if cut is None:
                return out
            end, fence_after = cut
            out.append(self._wrap(self.fence, text[self.settled:end], fence_after))
            self.settled, self.fence = end, fence_after

    def tail(self, text: str) -> str:
        return self._wrap(self.fence, text[self.settled:], None)

    @staticmethod
    def _wrap(fence_before: Fence | None, body: str, fence_after: Fence | None) -> str:
        head = fence_before.opener + "\n" if fence_before else ""
        foot = ("" if body.endswith("\n") else "\n") + fence_after.marker + "\n" if fence_after else ""
        return head + body + foot

    def _find_cut(self, text: str) -> tuple[int, Fence | None] | None:
        """The first good place at least min_chars past `settled`, so segments stay small."""
        start, n = self.settled, len(text)
        if n - start < self.min_chars:
            return None
        first_line_end = None   # the fallback for text without paragraph breaks
        fence, pos, prev_blank = self.fence, start, False
        while True:
            nl = text.find("\n", pos)
            if nl < 0:
                break
            line = text[pos:nl]
            after = next_fence_state(fence, line)
            blank = not line.strip()
            far_enough = pos - start >= self.min_chars
            # A cut before this line is clean after a blank line, if this line is not indented
            # (an indented line may continue a list item or be indented code).
            if far_enough and fence is None and prev_blank and not blank and line[:1] not in (" ", "\t"):
                return pos, None
            pos = nl + 1
            if pos - start >= self.min_chars:
                if after is not None:
                    return pos, after   # inside a code block any line end will do
                if first_line_end is None:
                    first_line_end = pos
            fence, prev_blank = after, blank
        if n - start < 4 * self.min_chars:
            return None
        if first_line_end is not None:
            return first_line_end, None
        if fence is None:   # one enormous line: cut at a space so the tail stays short
            space = text.find(" ", start + self.min_chars, n - 1)
            if space > 0:
                return space + 1, None
        return None

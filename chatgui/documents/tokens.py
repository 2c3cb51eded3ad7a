"""A cheap token estimate for chunk sizes and budgets when no tokenizer is at hand.

About four characters per token for Latin-script text; a CJK or other non-ASCII character is
about one token in most vocabularies, so it counts as one. Callers that have the model's own
tokenizer pass its counter instead (attachments.prepare_attachments takes one).
"""
from __future__ import annotations

import re

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def approx_tokens(text: str) -> int:
    if not text:
        return 0
    non_ascii = len(_NON_ASCII.findall(text))
    return max(1, non_ascii + (len(text) - non_ascii + 3) // 4)

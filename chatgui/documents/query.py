"""A user's question as an FTS5 query: its words, each quoted (so no word is read as FTS5
syntax: AND, NEAR, a quote, a colon or a NUL cannot break the query), joined by OR so that a
chunk with most of the words ranks first by BM25 without needing all of them. Common words are
dropped when other words remain: they match nearly every chunk and only cost time."""
from __future__ import annotations

import re

_WORDS = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 32
STOPWORDS = frozenset("""
a an and are as at be been but by can could did do does for from had has have how i if in into is
it its me my of on or our shall should so than that the their them then there these they this to
was we were what when where which who whom why will with would you your about tell please
""".split())


def query_terms(question: str) -> list[str]:
    words = [w.lower() for w in _WORDS.findall(question)]
    kept = [w for w in words if w not in STOPWORDS and len(w) > 1] or words
    unique = list(dict.fromkeys(kept))
    return unique[:MAX_TERMS]


def fts_query(question: str) -> str:
    """'' when the question has no words (the caller then finds nothing)."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in query_terms(question))

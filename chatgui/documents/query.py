"""A user's question as an FTS5 query: its words, each quoted (so no word is read as FTS5
syntax: AND, NEAR, a quote, a colon or a NUL cannot break the query), joined by OR so that a
chunk with most of the words ranks first by BM25 without needing all of them. Common words are
dropped when other words remain: they match nearly every chunk and only cost time."""
from __future__ import annotations

import re

_WORDS = re.compile(r"\w+", re.UNICODE)
# Chinese and Japanese write words without spaces, so FTS5's unicode61 tokenizer would take a
# whole sentence for one token; each of these characters is made a token of its own (in the
# indexed text and in questions), and the NEAR pairs below then match neighbouring characters,
# which covers most two-character words. (Korean separates words with spaces: left as it is.)
_CJK = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")
MAX_TERMS = 32
STOPWORDS = frozenset("""
a an and are as at be been but by can could did do does for from had has have how i if in into is
it its me my of on or our shall should so than that the their them then there these they this to
was we were what when where which who whom why will with would you your about tell please
的 了 吗 呢 吧 啊 是 在 什 么 哪 谁 怎 样 个 和 与 请 问 の は が を に で と も か です ます
""".split())


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def spaced_cjk(text: str) -> str:
    """The text with each Chinese or Japanese character set apart by spaces."""
    return _CJK.sub(r" \1 ", text)


def query_terms(question: str) -> list[str]:
    words = [w.lower() for w in _WORDS.findall(spaced_cjk(question))]
    kept = [w for w in words if w not in STOPWORDS and (len(w) > 1 or has_cjk(w))] or words
    unique = list(dict.fromkeys(kept))
    return unique[:MAX_TERMS]


def fts_query(question: str) -> str:
    """'' when the question has no words (the caller then finds nothing)."""
    return " OR ".join(_quoted(term) for term in query_terms(question))


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_near_query(question: str, distance: int = 4, max_pairs: int = 24) -> str:
    """Pairs of the question's words that stand near each other in it (next, or one apart),
    each asked for within `distance` tokens in a chunk: NEAR("launch" "code", 4) OR ... .
    BM25 alone scores a chunk that has 'launch code' in one sentence and the name asked about
    in another as high as the one that states 'the launch code of <name>'; ranking by this
    query as well puts chunks where the words stand together first. '' for one word."""
    terms = query_terms(question)
    pairs = [(terms[i], terms[j]) for gap in (1, 2) for i in range(len(terms)) for j in [i + gap]
             if j < len(terms)][:max_pairs]
    return " OR ".join(f"NEAR({_quoted(a)} {_quoted(b)}, {distance})" for a, b in pairs)

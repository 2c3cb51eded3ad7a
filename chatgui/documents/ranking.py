"""Merging rankings from retrievers whose scores are not comparable, by rank alone.

Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank(d)), k = 60 as in Cormack,
Clarke and Buettcher (SIGIR 2009). It rewards what both rankings hold, which is right for two
retrievers of the same kind (BM25 over words and over word pairs: index.search_lexical) and
wrong when one of them is weak on a question: a passage both hold lower down then outranks the
other's clear first. Interleaving (round robin, the first ranking first) keeps each ranking's
best, so words and vectors are interleaved. Measured (benchmarks/bench_hybrid_recall.py, the
500-page fact PDF, all-MiniLM-L6-v2, the one real embedding model at hand, whose vectors find
2 of 24 facts there): recall@3 of the questions as written 0.92 by words, 0.75 interleaved,
0.33 by RRF; recall@8 (the passages the app asks for) 1.0, 1.0 and 0.46; the questions in other
words 0.0 / 0.04 / 0.13 at 3 and 0.04 / 0.08 / 0.25 at 8.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable, Sequence


def reciprocal_rank_fusion(rankings: Iterable[Sequence[Hashable]], k: int = 60) -> list[tuple[Hashable, float]]:
    """[(item, fused score)], best first; ties keep the order of first appearance."""
    scores: dict[Hashable, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def interleave(rankings: Iterable[Sequence[Hashable]]) -> list[tuple[Hashable, float]]:
    """[(item, score)]: the rankings' first items in turn (the first ranking's first), then their
    second ones, ..., each item once, where it first comes; score 1 / position (higher is better)."""
    lists = [list(r) for r in rankings]
    seen: dict[Hashable, float] = {}
    for rank in range(max((len(r) for r in lists), default=0)):
        for ranking in lists:
            if rank < len(ranking) and ranking[rank] not in seen:
                seen[ranking[rank]] = 1.0 / (len(seen) + 1)
    return list(seen.items())

"""Reciprocal rank fusion: merge rankings from different retrievers (BM25, vectors) whose
scores are not comparable, by rank alone: score(d) = sum over rankings of 1 / (k + rank(d)).
k = 60 as in Cormack, Clarke and Buettcher (SIGIR 2009), the usual choice."""
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

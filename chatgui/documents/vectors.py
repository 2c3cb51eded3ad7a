"""The vector side of retrieval: an Embedder Protocol (an embedding model run by the engine
will implement it; none is required yet) and exact cosine search over float32 rows in numpy.

Exact search is a matrix-vector product: for 10,000 chunks of 1,024 dimensions that is 40 MB
and a few milliseconds, so no approximate index (and no extra package) is needed at
the sizes a desktop knowledge folder reaches; measure again past a few hundred thousand chunks.
Measured (benchmarks/bench_embeddings.py, 2 cores under load 7-11): 10,000 rows 0.7 ms (384
dimensions) to 6-25 ms (1,024); 100,000 rows 11-71 ms (384) and 40-66 ms (1,024).
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. `name` identifies the model (vectors of different models are
    never compared); documents and queries may be embedded differently (instruction-tuned
    embedding models prefix queries), hence two methods."""
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32."""
        ...


def normalized(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


def top_k_cosine(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, cosine similarities), best first. `matrix` rows must be normalized."""
    if matrix.shape[0] == 0 or k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    # einsum, not matrix @ query: a matrix-vector product is memory-bound, and BLAS's threads
    # only add waiting on a busy machine (measured on 2 busy cores, 10,000 x 256: 15 ms vs 2 ms)
    sims = np.einsum("ij,j->i", matrix, normalized(query).reshape(-1))
    k = min(k, sims.shape[0])
    top = np.argpartition(-sims, k - 1)[:k]
    order = top[np.argsort(-sims[top], kind="stable")]
    return order, sims[order]

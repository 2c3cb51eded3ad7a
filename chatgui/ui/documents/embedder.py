"""The knowledge folders' embedding model (Settings: AppSettings.knowledge_model), loaded at its
first use: that is on the indexer's thread or a search job's, never on the GUI thread (loading
Qwen3-Embedding-0.6B takes seconds). A file that cannot be loaded is said once, in the error
every later call raises (the indexer then indexes words only, a search falls back to words)."""
from __future__ import annotations

import threading
from pathlib import Path


class LazyEmbedder:
    """documents.Embedder over engine.embedding.EmbeddingModel, loaded when first asked."""

    def __init__(self, path: str):
        self.path = path
        self.name = Path(path).name      # (what EmbeddingModel.name is: the index's key for its vectors)
        self.error: str | None = None
        self._model = None
        self._lock = threading.Lock()

    def model(self):
        with self._lock:
            if self._model is None:
                if self.error is not None:
                    raise RuntimeError(self.error)
                from chatgui.engine.embedding import load_embedding_model
                try:
                    self._model = load_embedding_model(self.path)
                except Exception as exc:   # noqa: BLE001 - kept, said by every later call
                    self.error = str(exc) or type(exc).__name__
                    raise
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def dim(self) -> int:
        return self.model().dim

    def embed_documents(self, texts):
        return self.model().embed_documents(texts)

    def embed_query(self, text):
        return self.model().embed_query(text)

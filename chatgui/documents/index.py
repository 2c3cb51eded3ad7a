"""The knowledge index: files, their chunks, an FTS5 table over the chunks (BM25) and optional
embeddings, in its own SQLite file (data folder / knowledge.sqlite3).

Its own file rather than tables in the chat database: the index is a cache that can always be
rebuilt from the folders, so it stays out of the chat store's schema, migrations, start-up
damage check and backups (a few hundred MB of chunks in every daily backup would be waste),
and a damaged index is set aside and rebuilt without touching a chat.

Restart safety: everything about one file (its row, old chunks out, new chunks and vectors in)
is written in one transaction, so a process killed at any moment leaves each file either as it
was or fully replaced: never half its chunks, never twice. Files already written stay written,
so a rerun skips them (the indexer compares size, times and hash).

One KnowledgeIndex is one connection, for one thread; the indexer thread opens its own (WAL
lets the window search while it writes).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .query import fts_near_query, fts_query, has_cjk, spaced_cjk
from .ranking import interleave, reciprocal_rank_fusion
from .types import Chunk, FileStatus, Hit
from .vectors import Embedder, normalized, top_k_cosine

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
INDEX_FILE_NAME = "knowledge.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS folders(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    folder_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    path TEXT NOT NULL UNIQUE,
    size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    pages INTEGER, chunks INTEGER NOT NULL DEFAULT 0, indexed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS files_folder ON files(folder_id);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL, text TEXT NOT NULL,
    search TEXT,  -- the text as indexed when it differs (query.spaced_cjk), else NULL
    page INTEGER, line_start INTEGER, line_end INTEGER, tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE VIEW IF NOT EXISTS chunks_search AS SELECT id, coalesce(search, text) AS text FROM chunks;
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks_search', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.id, coalesce(new.search, new.text));
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, coalesce(old.search, old.text));
END;
CREATE TABLE IF NOT EXISTS embeddings(
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    model TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model);
"""


class IndexUnusable(Exception):
    """The index file cannot be opened or made (the message says why)."""


@dataclass(frozen=True)
class Folder:
    id: int
    path: str


@dataclass(frozen=True)
class StoredFile:
    """What the index knows of a file, for deciding whether it changed."""
    id: int
    size: int | None
    mtime_ns: int | None
    ctime_ns: int | None
    sha256: str | None
    status: str


def default_index_path() -> Path:
    from chatgui.common.paths import data_dir

    return data_dir() / INDEX_FILE_NAME


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "file is encrypted" in text


class KnowledgeIndex:
    def __init__(self, path: str | os.PathLike = ":memory:"):
        self.path = os.fspath(path)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if self.path == ":memory:" or not _is_damage(exc):
                raise IndexUnusable(f"the knowledge index {self.path} cannot be opened ({exc})") from None
            # A cache: set the damaged file aside (kept for a look, never deleted) and rebuild
            aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            log.warning("knowledge index %s is damaged (%s); moved to %s and rebuilt", self.path, exc, aside)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.replace(self.path + suffix, aside + suffix)
            self._conn = self._open()
        self._writes = 0
        self._matrix_key = None
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            stored = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            if int(stored) > SCHEMA_VERSION:  # never rebuild over a newer chatgui's index
                raise IndexUnusable(f"the knowledge index {self.path} was written by a newer chatgui")
            # a later schema change bumps SCHEMA_VERSION and migrates (or rebuilds: it is a cache) here
            conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'x'").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- folders -------------------------------------------------------------------------
    def add_folder(self, path: str | os.PathLike) -> Folder:
        """Add a knowledge folder (absolute, resolved). A folder inside one already added, or one
        that holds an added folder, is refused: its files would belong to two folders."""
        resolved = str(Path(path).expanduser().resolve())
        for folder in self.folders():
            if folder.path == resolved:
                return folder
            if _inside(resolved, folder.path):
                raise ValueError(f"{resolved} is already part of the knowledge folder {folder.path}")
            if _inside(folder.path, resolved):
                raise ValueError(f"{resolved} holds the knowledge folder {folder.path}: remove that one first")
        cur = self._conn.execute("INSERT INTO folders(path, added) VALUES (?, ?)", (resolved, time.time()))
        self._changed()
        return Folder(cur.lastrowid, resolved)

    def remove_folder(self, folder_id: int) -> None:
        """Forget a folder and everything indexed from it (the files themselves are untouched)."""
        with self._transaction():
            self._conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE folder_id = ?)",
                               (folder_id,))
            self._conn.execute("DELETE FROM files WHERE folder_id = ?", (folder_id,))
            self._conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))

    def folders(self) -> list[Folder]:
        return [Folder(*row) for row in self._conn.execute("SELECT id, path FROM folders ORDER BY path")]

    # -- files -----------------------------------------------------------------------------
    def stored_file(self, path: str) -> StoredFile | None:
        row = self._conn.execute("SELECT id, size, mtime_ns, ctime_ns, sha256, status FROM files WHERE path = ?",
                                 (path,)).fetchone()
        return StoredFile(*row) if row else None

    def store_file(self, path: str, *, folder_id: int | None, kind: str, status: str, reason: str | None = None,
                   size: int | None = None, mtime_ns: int | None = None, ctime_ns: int | None = None,
                   sha256: str | None = None, pages: int | None = None, chunks: Sequence[Chunk] = (),
                   vectors: np.ndarray | None = None, model: str | None = None) -> int:
        """Replace everything known about one file, in one transaction. Returns its id."""
        with self._transaction():
            conn = self._conn
            conn.execute(
                "INSERT INTO files(folder_id, path, size, mtime_ns, ctime_ns, sha256, kind, status, reason, pages,"
                " chunks, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(path) DO UPDATE SET folder_id = excluded.folder_id, size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns, sha256 = excluded.sha256,"
                " kind = excluded.kind, status = excluded.status, reason = excluded.reason, pages = excluded.pages,"
                " chunks = excluded.chunks, indexed_at = excluded.indexed_at",
                (folder_id, path, size, mtime_ns, ctime_ns, sha256, kind, status, reason, pages, len(chunks),
                 time.time()))
            file_id = conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()[0]
            conn.execute("DELETE FROM chunks WHERE file_id = ?", (file_id,))
            conn.executemany(
                "INSERT INTO chunks(file_id, ord, text, search, page, line_start, line_end, tokens)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(file_id, i, c.text, spaced_cjk(c.text) if has_cjk(c.text) else None, c.page, c.line_start,
                  c.line_end, c.tokens) for i, c in enumerate(chunks)])
            if vectors is not None and len(chunks):
                ids = [row[0] for row in conn.execute("SELECT id FROM chunks WHERE file_id = ? ORDER BY ord",
                                                      (file_id,))]
                rows = normalized(vectors)
                if rows.ndim != 2 or rows.shape[0] != len(ids):
                    raise ValueError(f"{len(ids)} chunks but vectors of shape {rows.shape}")
                conn.executemany("INSERT INTO embeddings(chunk_id, model, vector) VALUES (?, ?, ?)",
                                 [(cid, model, rows[i].tobytes()) for i, cid in enumerate(ids)])
        return file_id

    def chunks_without_vectors(self, model: str, folder_id: int | None = None) -> list[tuple[int, str]]:
        """(chunk id, text) of the chunks that have no vector of this model yet (files indexed
        before the model was chosen, or with another model), in file order."""
        where, args = ("AND f.folder_id = ?", [folder_id]) if folder_id is not None else ("", [])
        return list(self._conn.execute(
            "SELECT c.id, c.text FROM chunks c JOIN files f ON f.id = c.file_id"
            " WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.chunk_id = c.id AND e.model = ?)"
            f" {where} ORDER BY c.file_id, c.ord", (model, *args)))

    def store_vectors(self, chunk_ids: Sequence[int], vectors: np.ndarray, model: str) -> None:
        """Vectors of chunks already stored, in one transaction (a chunk has one vector: another
        model's is replaced). A chunk removed meanwhile is skipped."""
        rows = normalized(vectors)
        if rows.ndim != 2 or rows.shape[0] != len(chunk_ids):
            raise ValueError(f"{len(chunk_ids)} chunks but vectors of shape {rows.shape}")
        with self._transaction():
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings(chunk_id, model, vector)"
                " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?)",
                [(cid, model, rows[i].tobytes(), cid) for i, cid in enumerate(chunk_ids)])

    def update_file_times(self, file_id: int, size: int, mtime_ns: int, ctime_ns: int) -> None:
        """The file's bytes did not change (same hash): remember its new times, keep its chunks."""
        with self._transaction():
            self._conn.execute("UPDATE files SET size = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?",
                               (size, mtime_ns, ctime_ns, file_id))

    def remove_files(self, paths: Iterable[str]) -> None:
        with self._transaction():
            for path in paths:
                self._conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE path = ?)", (path,))
                self._conn.execute("DELETE FROM files WHERE path = ?", (path,))

    def file_paths(self, folder_id: int) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT path FROM files WHERE folder_id = ?", (folder_id,))]

    def file_statuses(self, folder_id: int | None = None) -> list[FileStatus]:
        sql = "SELECT path, status, reason, kind, chunks, pages, size FROM files"
        args: tuple = ()
        if folder_id is not None:
            sql += " WHERE folder_id = ?"
            args = (folder_id,)
        return [FileStatus(*row) for row in self._conn.execute(sql + " ORDER BY path", args)]

    def counts(self) -> dict[str, int]:
        one = lambda sql: self._conn.execute(sql).fetchone()[0]  # noqa: E731
        return {"files": one("SELECT count(*) FROM files"),
                "indexed": one("SELECT count(*) FROM files WHERE status = 'indexed'"),
                "failed": one("SELECT count(*) FROM files WHERE status = 'failed'"),
                "chunks": one("SELECT count(*) FROM chunks"),
                "embeddings": one("SELECT count(*) FROM embeddings")}

    # -- search ----------------------------------------------------------------------------
    def search_bm25(self, question: str, limit: int = 10, folder_ids: Sequence[int] | None = None,
                    paths: Sequence[str] | None = None, query: str | None = None) -> list[Hit]:
        """Chunks by BM25 over the question's words (any of them), best first."""
        query = fts_query(question) if query is None else query
        if not query:
            return []
        where, args = self._filter(folder_ids, paths)
        if where:
            rows = self._conn.execute(
                "SELECT c.id, f.path, c.text, c.page, c.line_start, c.line_end, bm25(chunks_fts) AS score"
                " FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN files f ON f.id = c.file_id"
                f" WHERE chunks_fts MATCH ? {where} ORDER BY score LIMIT ?", (query, *args, limit))
        else:
            # rank first, join after: only the `limit` best rows are looked up (3x faster at 10,000 chunks)
            rows = self._conn.execute(
                "SELECT c.id, f.path, c.text, c.page, c.line_start, c.line_end, best.score FROM"
                " (SELECT rowid, bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
                "  ORDER BY score LIMIT ?) AS best"
                " JOIN chunks c ON c.id = best.rowid JOIN files f ON f.id = c.file_id ORDER BY best.score",
                (query, limit))
        # bm25() is lower-is-better; negate so that every Hit.score is higher-is-better
        return [Hit(r[0], r[1], r[2], r[3], r[4], r[5], -r[6]) for r in rows]

    def search_lexical(self, question: str, limit: int = 10, folder_ids: Sequence[int] | None = None,
                       paths: Sequence[str] | None = None, candidates: int = 50) -> list[Hit]:
        """BM25 over the words, fused (RRF) with BM25 over pairs of the question's words found
        near each other (query.fts_near_query): the words standing together in a chunk count."""
        words = self.search_bm25(question, candidates, folder_ids, paths)
        near_query = fts_near_query(question)
        if not near_query or not words:
            return words[:limit]
        near = self.search_bm25(question, candidates, folder_ids, paths, query=near_query)
        return self._fuse([words, near], limit)

    def search_vectors(self, query_vector: np.ndarray, model: str, limit: int = 10,
                       folder_ids: Sequence[int] | None = None, paths: Sequence[str] | None = None) -> list[Hit]:
        ids, matrix = self._vectors(model)
        if folder_ids is not None or paths is not None:
            allowed = self._chunk_ids(folder_ids, paths)
            keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            ids, matrix = ids[keep], matrix[keep]
        rows, sims = top_k_cosine(matrix, query_vector, limit)
        rows, sims = rows[sims > 0], sims[sims > 0]  # orthogonal (or opposite) is no match at all
        hits = self._hits([int(ids[r]) for r in rows])
        return [Hit(h.chunk_id, h.path, h.text, h.page, h.line_start, h.line_end, float(s))
                for h, s in zip(hits, sims)]

    def search(self, question: str, limit: int = 8, folder_ids: Sequence[int] | None = None,
               paths: Sequence[str] | None = None, embedder: Embedder | None = None,
               candidates: int = 50, fusion: str = "interleave") -> list[Hit]:
        """search_lexical, with vector search when an embedder is given and the index holds its
        vectors: the two rankings interleaved (fusion "interleave": see ranking.py for why) or
        fused by reciprocal rank fusion ("rrf"). Hit.score is the fused score."""
        lexical = self.search_lexical(question, candidates, folder_ids, paths, candidates)
        if embedder is None or not self._has_vectors(embedder.name):
            return lexical[:limit]
        try:
            query_vector = embedder.embed_query(question)
        except Exception as exc:  # noqa: BLE001 - a model that fails (a file gone bad) leaves the words
            log.warning("embedding the question failed (%s); searching by its words only", exc)
            return lexical[:limit]
        vector = self.search_vectors(query_vector, embedder.name, candidates, folder_ids, paths)
        return self._fuse([lexical, vector], limit, interleave if fusion == "interleave" else reciprocal_rank_fusion)

    @staticmethod
    def _fuse(rankings: list[list[Hit]], limit: int, method=reciprocal_rank_fusion) -> list[Hit]:
        by_id = {h.chunk_id: h for ranking in rankings for h in ranking}
        fused = method([[h.chunk_id for h in ranking] for ranking in rankings])[:limit]
        return [Hit(cid, by_id[cid].path, by_id[cid].text, by_id[cid].page, by_id[cid].line_start,
                    by_id[cid].line_end, score) for cid, score in fused]

    def search_in_order(self, limit: int = 50, paths: Sequence[str] | None = None) -> list[Hit]:
        """Chunks from the start of each file, in file order: what to show when a question has
        no words to search by."""
        where, args = self._filter(None, paths)
        rows = self._conn.execute(
            "SELECT c.id, f.path, c.text, c.page, c.line_start, c.line_end FROM chunks c"
            f" JOIN files f ON f.id = c.file_id WHERE 1 {where} ORDER BY c.ord, f.id LIMIT ?", (*args, limit))
        return [Hit(*r, 0.0) for r in rows]

    # -- internals -------------------------------------------------------------------------
    def _filter(self, folder_ids, paths) -> tuple[str, list]:
        where, args = "", []
        if folder_ids is not None:
            where += f" AND f.folder_id IN ({','.join('?' * len(folder_ids)) or 'NULL'})"
            args += list(folder_ids)
        if paths is not None:
            where += f" AND f.path IN ({','.join('?' * len(paths)) or 'NULL'})"
            args += list(paths)
        return where, args

    def _chunk_ids(self, folder_ids, paths) -> set[int]:
        where, args = self._filter(folder_ids, paths)
        return {r[0] for r in self._conn.execute(
            f"SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE 1 {where}", args)}

    def _hits(self, chunk_ids: list[int]) -> list[Hit]:
        if not chunk_ids:
            return []
        rows = self._conn.execute(
            "SELECT c.id, f.path, c.text, c.page, c.line_start, c.line_end FROM chunks c"
            f" JOIN files f ON f.id = c.file_id WHERE c.id IN ({','.join('?' * len(chunk_ids))})", chunk_ids)
        by_id = {r[0]: r for r in rows}
        return [Hit(*by_id[cid], 0.0) for cid in chunk_ids if cid in by_id]

    def _has_vectors(self, model: str) -> bool:
        return self._conn.execute("SELECT 1 FROM embeddings WHERE model = ? LIMIT 1", (model,)).fetchone() is not None

    def _vectors(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, normalized rows) of one model, cached until the index changes
        (data_version moves with other connections' commits, _writes with this one's)."""
        key = (model, self._conn.execute("PRAGMA data_version").fetchone()[0], self._writes)
        if self._matrix_key != key:
            rows = self._conn.execute(
                "SELECT chunk_id, vector FROM embeddings WHERE model = ? ORDER BY chunk_id", (model,)).fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                      if rows else np.zeros((0, 1), dtype=np.float32))
            self._matrix, self._matrix_key = (ids, matrix), key
        return self._matrix

    def _changed(self) -> None:
        self._writes += 1

    def _transaction(self):
        return _Transaction(self)


class _Transaction:
    def __init__(self, index: KnowledgeIndex):
        self.index = index

    def __enter__(self):
        self.index._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        conn = self.index._conn
        if exc_type is None:
            conn.execute("COMMIT")
            self.index._changed()
        else:
            conn.execute("ROLLBACK")
        return False


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)

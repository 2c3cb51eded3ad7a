"""The background indexer: a job that brings the index up to date with its knowledge folders.

Per folder: walk it (walk.py), then per file decide whether it changed. Same size, mtime and
ctime as stored: skipped without opening it. Otherwise its SHA-256 is compared: same bytes
(a touch, a copy back) only update the stored times; new bytes are read, chunked and written
in one transaction (index.py). With an Embedder, the folder's chunks that have no vector of its
model (new files', and those indexed before it was chosen) get one after the folder's files,
EMBED_BATCH at a time, each batch committed: the words of every file are searchable first
(embedding a 1,000-page PDF takes minutes on a CPU), and a cancel or a kill keeps the batches
done. A model that fails is said once (summary.embedding_error); the files stay indexed by
their words. A file that fails gets status "failed" and a
plain reason, and the job goes on. Files that disappeared are removed from the index once their
folder was walked to the end.

Control from any thread: pause() / resume() take effect between files, cancel() between files
and between a PDF's pages. A cancelled or killed job loses at most the file it was on: each
file is committed on its own, and a rerun skips what is already there.

Progress callbacks run on the job's thread (a Qt caller forwards them as queued signals).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from chatgui.common.io import sha256_file

from .extract import limit_for, os_reason, size_text
from .index import Folder, KnowledgeIndex
from .reader import ReaderProcess, read_and_chunk
from .vectors import Embedder
from .walk import walk_documents

log = logging.getLogger(__name__)
# Chunks embedded at a time: cancel and pause act between batches (a 1,000-page PDF's 3,000
# chunks take minutes on a CPU), and a batch of similar lengths keeps the model busy.
EMBED_BATCH = 32


@dataclass(frozen=True)
class IndexProgress:
    folder: str
    done: int  # files handled so far in this folder
    total: int  # files found in this folder
    path: str
    # "indexed", "unchanged", "failed", "removed", or "embedding": done / total then count the
    # chunks of files indexed before that are being given vectors
    outcome: str
    reason: str | None = None
    chunks: int = 0


@dataclass
class IndexSummary:
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    cancelled: bool = False
    embedded: int = 0                 # chunks given a vector (new files' and earlier ones')
    embedding_error: str | None = None  # why the embedding model could not embed (the words are indexed)


class _HashingCancelled(Exception):
    pass


def file_sha256(path: str, cancelled: Callable[[], bool] = lambda: False) -> str | None:
    """The file's sha256, or None when `cancelled()` turned true while it was read."""
    def stop_if_cancelled(done: int, total: int) -> None:
        if cancelled():
            raise _HashingCancelled

    try:
        return sha256_file(path, stop_if_cancelled)
    except _HashingCancelled:
        return None


class IndexJob:
    """Index some or all knowledge folders of the index at `db_path`.

    job = IndexJob(path, on_progress=cb); job.start()  # a thread of its own
    job.pause(); job.resume(); job.cancel(); job.wait()
    job.run() does the same work on the calling thread (tests, a caller's own worker).
    separate_reader=False reads files on the job's thread instead of a child process (tests:
    no process start; the window should keep the default, see reader.py).
    """

    def __init__(self, db_path: str | os.PathLike, folder_ids: Sequence[int] | None = None,
                 embedder: Embedder | None = None, on_progress: Callable[[IndexProgress], None] | None = None,
                 on_finished: Callable[[IndexSummary], None] | None = None,
                 chunk_tokens: int = 200, overlap_tokens: int = 40, separate_reader: bool = True):
        self.db_path = os.fspath(db_path)
        self.folder_ids = folder_ids
        self.embedder = embedder
        self.on_progress = on_progress
        self.on_finished = on_finished
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # files are read (parsed, chunked) in a child process unless told otherwise: see reader.py
        self._reader = ReaderProcess(chunk_tokens, overlap_tokens) if separate_reader else None
        self.summary = IndexSummary()
        self.error: str | None = None  # set when the job could not run at all (the index cannot be opened)
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    # -- control (any thread) ----------------------------------------------------------
    def start(self) -> "IndexJob":
        self._thread = threading.Thread(target=self.run, name="chatgui-indexer", daemon=True)
        self._thread.start()
        return self

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # a paused job wakes up to stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- the work (the job's thread) -----------------------------------------------------
    def run(self) -> IndexSummary:
        try:
            with KnowledgeIndex(self.db_path) as index:
                folders = index.folders()
                if self.folder_ids is not None:
                    folders = [f for f in folders if f.id in self.folder_ids]
                for folder in folders:
                    if self.cancelled():
                        break
                    self._index_folder(index, folder)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never raised into a thread
            log.exception("indexing stopped")
            self.error = f"indexing stopped: {exc}"
        finally:
            if self._reader is not None:
                self._reader.close()
            self.summary.cancelled = self.cancelled()
            self._done.set()
            if self.on_finished:
                try:
                    self.on_finished(self.summary)
                except Exception:  # noqa: BLE001 - on a thread of ours: log, never raise into it
                    log.exception("index finished callback failed")
        return self.summary

    def _wait_if_paused(self) -> bool:
        """False when the job was cancelled (while paused or not)."""
        while not self._running.wait(0.2):
            pass
        return not self.cancelled()

    def _index_folder(self, index: KnowledgeIndex, folder: Folder) -> None:
        found, problems = walk_documents(folder.path, self.cancelled)
        if self.cancelled():
            return
        total = len(found) + len(problems)
        done = 0
        for problem in problems:
            index.store_file(problem.path, folder_id=folder.id, kind="", status="failed", reason=problem.reason)
            done += 1
            self.summary.failed += 1
            self._report(IndexProgress(folder.path, done, total, problem.path, "failed", problem.reason))
        for item in found:
            if not self._wait_if_paused():
                return
            outcome, reason, chunks = self._index_file(index, folder, item)
            if outcome == "cancelled":
                return
            done += 1
            setattr(self.summary, outcome, getattr(self.summary, outcome) + 1)
            self._report(IndexProgress(folder.path, done, total, item.path, outcome, reason, chunks))
        if self.embedder is not None and not self.cancelled() and self.summary.embedding_error is None:
            self._embed_missing(index, folder)
        # Only a walk that ran to the end knows which files are gone
        present = {item.path for item in found} | {p.path for p in problems}
        # what lies under a folder that could not be listed is kept: unreadable is not deleted
        # (a share offline, permissions changed for a while)
        hidden = tuple(p.path.rstrip(os.sep) + os.sep for p in problems)
        gone = [path for path in index.file_paths(folder.id) if path not in present and not path.startswith(hidden)]
        if gone:
            index.remove_files(gone)
            for path in gone:
                self.summary.removed += 1
                self._report(IndexProgress(folder.path, done, total, path, "removed"))

    def _index_file(self, index: KnowledgeIndex, folder: Folder, item) -> tuple[str, str | None, int]:
        st = item.stat
        stored = index.stored_file(item.path)
        if stored and (stored.size, stored.mtime_ns, stored.ctime_ns) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            return "unchanged", None, 0
        times = dict(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)

        def failed(reason: str, sha: str | None = None):
            index.store_file(item.path, folder_id=folder.id, kind=item.kind, status="failed", reason=reason,
                             sha256=sha, **times)
            return "failed", reason, 0

        if st.st_size > limit_for(item.kind):  # refused by size alone: not even hashed
            return failed(f"too large to read ({size_text(st.st_size)}; the limit for this kind is "
                          f"{size_text(limit_for(item.kind))})")
        try:
            sha = file_sha256(item.path, self.cancelled)
        except OSError as exc:
            return failed(os_reason(exc))
        if sha is None:  # cancelled while hashing
            return "cancelled", None, 0
        if stored and stored.sha256 == sha and stored.status == "indexed":
            index.update_file_times(stored.id, **times)
            return "unchanged", None, 0
        if self._reader is not None:
            read = self._reader.read(item.path, item.kind, self.cancelled)
        else:
            read = read_and_chunk(item.path, item.kind, self.chunk_tokens, self.overlap_tokens, self.cancelled)
        if read is None or self.cancelled():
            return "cancelled", None, 0  # a half-read file is not written; the rerun reads it
        if read.error:
            return failed(read.error, sha)
        chunks = read.chunks
        # (its vectors come after the folder's files: _embed_missing)
        index.store_file(item.path, folder_id=folder.id, kind=item.kind, status="indexed", sha256=sha,
                         pages=read.pages, chunks=chunks, **times)
        return "indexed", None, len(chunks)

    def _embed(self, texts: list[str]):
        """The texts' vectors, EMBED_BATCH at a time; None when cancelled meanwhile or when the
        model fails (said once in the summary: the files are still indexed by their words)."""
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            if not self._wait_if_paused():
                return None
            try:
                parts.append(self.embedder.embed_documents(texts[start:start + EMBED_BATCH]))
            except Exception as exc:  # noqa: BLE001 - a model that cannot run must not stop indexing
                log.warning("embedding failed: %s", exc)
                self.summary.embedding_error = str(exc) or type(exc).__name__
                return None
        self.summary.embedded += len(texts)
        return np.concatenate(parts) if parts else None

    def _embed_missing(self, index: KnowledgeIndex, folder: Folder) -> None:
        """Vectors for the folder's chunks that have none of this model: a batch at a time, each
        committed, so a cancel or a kill keeps what was done."""
        missing = index.chunks_without_vectors(self.embedder.name, folder.id)
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start:start + EMBED_BATCH]
            vectors = self._embed([text for _, text in batch])
            if vectors is None:
                return
            index.store_vectors([cid for cid, _ in batch], vectors, self.embedder.name)
            self._report(IndexProgress(folder.path, start + len(batch), len(missing), folder.path, "embedding"))

    def _report(self, progress: IndexProgress) -> None:
        if self.on_progress:
            try:
                self.on_progress(progress)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop indexing
                log.exception("index progress callback failed")

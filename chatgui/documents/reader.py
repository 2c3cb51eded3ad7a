"""Reading files (extract + chunk) in a child process, for the indexer.

Why a process and not the indexer's thread: pypdf is pure Python, so a thread parsing PDFs
holds the GIL most of the time and the window's event loop waits for it (measured on 2 busy
cores: the main thread's 5 ms ticks came p50 18 ms / p99 63 ms late while a thread indexed
PDFs, p99 7 ms without). A child process has its own GIL. It also contains what a hostile file
can do: a parser that crashes, eats memory or never ends takes down only the child, which is
replaced, and the file gets a reason. The child is started with "spawn" (forking a process that
runs Qt and torch threads is unsafe); the bundle's launcher calls freeze_support() for it.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from .chunking import chunk_passages
from .extract import extract, kind_of
from .types import Chunk, Extraction

TIME_LIMIT_S = 300.0  # one file; a 1,000-page PDF reads in well under a minute


@dataclass
class ReadResult:
    error: str | None
    pages: int | None = None
    chunks: list[Chunk] = field(default_factory=list)


def read_and_chunk(path: str, kind: str, chunk_tokens: int, overlap_tokens: int,
                   cancelled: Callable[[], bool] | None = None) -> ReadResult:
    extraction = extract(path, kind, cancelled=cancelled)
    if not extraction.ok:
        return ReadResult(extraction.error)
    return ReadResult(None, extraction.pages, chunk_passages(extraction.passages, chunk_tokens, overlap_tokens))


def _serve(conn, chunk_tokens: int, overlap_tokens: int) -> None:
    """The child: read what the parent sends until it sends None or goes away."""
    if hasattr(os, "nice"):
        try:
            os.nice(10)  # background work: the window's process gets the CPU first
        except OSError:
            pass
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent died (kill -9): nothing left to do
            return
        if request is None:
            return
        path, kind, whole = request
        conn.send(extract(path, kind or None) if whole else read_and_chunk(path, kind, chunk_tokens, overlap_tokens))


class ReaderProcess:
    """One child process that reads files in turn, kept between files (a start costs about a
    second) and closed by close(). Not thread-safe: one indexer, or one attachment worker, uses it."""

    def __init__(self, chunk_tokens: int, overlap_tokens: int, time_limit_s: float = TIME_LIMIT_S,
                 serve: Callable = _serve):
        self.serve = serve  # the child's loop (a test gives one that crashes or hangs)
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.time_limit_s = time_limit_s
        self._process = None
        self._conn = None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=self.serve, args=(child, self.chunk_tokens, self.overlap_tokens),
                                        name="chatgui-reader", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def read(self, path: str, kind: str, cancelled: Callable[[], bool] = lambda: False) -> ReadResult | None:
        """The file's chunks or a reason; None when cancelled (the child is then stopped)."""
        answer = self._ask((path, kind, False), cancelled)
        return ReadResult(answer) if isinstance(answer, str) else answer

    def extract(self, path: str, cancelled: Callable[[], bool] = lambda: False) -> Extraction | None:
        """extract.extract(path) in the child: a crash or a hang becomes the Extraction's error."""
        answer = self._ask((path, "", True), cancelled)
        return Extraction(path, kind_of(path), error=answer) if isinstance(answer, str) else answer

    def _ask(self, request, cancelled: Callable[[], bool]):
        """The child's answer, a reason (str) when it died or ran out of time, None when cancelled."""
        if self._process is None or not self._process.is_alive():
            self._start()
        self._conn.send(request)
        deadline = time.monotonic() + self.time_limit_s
        while True:
            if cancelled():
                self.close(kill=True)
                return None
            try:
                if self._conn.poll(0.1):
                    return self._conn.recv()
            except (EOFError, OSError):
                pass  # the child died; said below
            if not self._process.is_alive():
                code = self._process.exitcode
                self.close(kill=True)
                return (f"reading it stopped chatgui's reader (exit code {code}); "
                        "the file may be damaged or too complex")
            if time.monotonic() > deadline:
                self.close(kill=True)
                return f"reading it took longer than {self.time_limit_s:.0f} s"

    def close(self, kill: bool = False) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        if not kill and process.is_alive():
            try:
                conn.send(None)
                process.join(5)
            except (OSError, EOFError):
                pass
        if process.is_alive():
            process.kill()
            process.join(5)
        conn.close()

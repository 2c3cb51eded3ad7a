"""The window's background work: a store call that may touch many rows or files (search as you
type, import, export, restoring a backup) runs on a thread of its own, and its result comes back
to the GUI thread through a queued signal. The model's work is not here: it has its runner."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait as futures_wait
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal


class _Outcome(QObject):
    done = Signal(object, object, object)   # callback, result, error: emitted on a worker thread


class BackgroundJobs:
    """Run functions on a small pool of long-lived threads (so the store's per-thread read
    connections are reused, not opened per job); `on_done(result, error)` is called on the GUI
    thread. Two threads: a search as you type need not wait for a long export."""

    def __init__(self, threads: int = 2):
        self._outcome = _Outcome()
        self._outcome.done.connect(lambda cb, result, error: cb(result, error), Qt.ConnectionType.QueuedConnection)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chatgui-job")
        self._futures: list[Future] = []

    def run(self, work: Callable[[], object], on_done: Callable[[object, Exception | None], None]) -> None:
        def job():
            try:
                result, error = work(), None
            except Exception as err:   # noqa: BLE001 (every failure must reach the window as a message)
                result, error = None, err
            self._outcome.done.emit(on_done, result, error)

        self._futures = [f for f in self._futures if not f.done()] + [self._pool.submit(job)]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the queued and running jobs (tests, closing); their results still arrive as events."""
        _done, pending = futures_wait(self._futures, timeout)
        return not pending

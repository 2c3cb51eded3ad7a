"""The model runner: one thread owns a backend and runs jobs on it, one at a time, in order.

A model is not thread-safe (its KV cache holds the last prompt), so everything that touches it
(load, reply, count tokens, the inspector's logits, connecting to a server) is a Job run by
this one thread. Both the app (through a thin QObject adapter, ui/backends/engine_client.py)
and the API server (server/worker.py) use it. Each job has its own cancel flag and an event
sink, called on the runner thread; the caller forwards events to its own world (queued Qt
signals, or an asyncio queue). No Qt here.

Events of a reply job (see `reply_job`): ("started", generation), ("token", TokenEvent) for
each token, then ("done", generation) or ("error", exception).
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Callable, Sequence, cast

if TYPE_CHECKING:
    from chatgui.common.backend import ChatBackend, PreparableBackend

from .prompt import PromptMessage
from .records import ValueEnum

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class CancelFlag(threading.Event):
    """A job's cancel flag: a threading.Event that can also call back the moment it is set, so
    that a backend blocked on something else (the remote backend waits on its network queue)
    is woken at once instead of checking the flag every few milliseconds."""

    def __init__(self):
        super().__init__()
        self._callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call callback() (on the thread that sets the flag) when it is set; at once if it
        already is. Returns a function that forgets the callback."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback) -> None:
        with self._callbacks_lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


class QueueFull(Exception):
    """More jobs wait than the runner accepts."""


class JobEvent(ValueEnum):
    """What a reply job reports to its sink (a str enum: a sink may compare with the plain word)."""
    STARTED = "started"                # the prompt is in: the Generation (or Batch) follows
    TOKEN = "token"                    # a TokenEvent; of a batch: (i, TokenEvent)
    CANDIDATE_DONE = "candidate_done"  # of a batch: (i, its choice) when answer i has ended
    DONE = "done"                      # the Generation (Batch) with its statistics
    ERROR = "error"                    # the exception that ended the job


class ShuttingDown(Exception):
    """The runner is closing: the job was not (or not fully) run."""


class Job:
    def __init__(self, fn: Callable[["Job"], None], sink: Callable[["Job", str, object], None] | None = None,
                 cancel: CancelFlag | None = None):
        self.id = next(_ids)
        self.fn = fn
        self.sink = sink
        # also handed to the backend as its cancel flag; a caller may bring its own (the server's)
        self.cancelled = cancel if cancel is not None else CancelFlag()
        self.started = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def emit(self, kind: str, value=None) -> None:
        if self.sink is not None:
            self.sink(self, kind, value)


class ModelRunner:
    def __init__(self, name: str = "chatgui-model", max_waiting: int | None = None):
        self.backend: ChatBackend | None = None     # read and replaced only by jobs
        self.max_waiting = max_waiting
        self.closing = threading.Event()
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Job], None], sink=None, cancel: CancelFlag | None = None) -> Job:
        """Queue fn(job) to run on the runner thread. QueueFull when max_waiting jobs already wait;
        ShuttingDown once the runner is closing."""
        job = Job(fn, sink, cancel)
        with self._cond:
            if self.closing.is_set():
                raise ShuttingDown()
            # Jobs cancelled while waiting are dropped first: they should not count as load.
            self._waiting = deque(j for j in self._waiting if not j.cancelled.is_set())
            if self.max_waiting is not None and len(self._waiting) >= self.max_waiting:
                raise QueueFull()
            self._waiting.append(job)
            self._cond.notify()
        return job

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(not j.cancelled.is_set() for j in self._waiting)

    @property
    def busy(self) -> bool:
        return self._current is not None

    def close(self, timeout: float = 5.0) -> bool:
        """Cancel every job (running or waiting), end the thread; False if it is still busy after
        timeout (a model load cannot be interrupted)."""
        with self._cond:
            self.closing.set()
            for job in self._waiting:
                job.cancel()
                job.emit(JobEvent.ERROR, ShuttingDown())
                job.done.set()
            self._waiting.clear()
            if self._current is not None:
                self._current.cancel()
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self.closing.is_set():
                    self._cond.wait()
                if self.closing.is_set():
                    return
                job = self._current = self._waiting.popleft()
            try:
                if not job.cancelled.is_set():
                    job.started.set()
                    job.fn(job)
            except Exception as e:   # noqa: BLE001 - a job's failure is its caller's news, not the thread's end
                log.exception("runner job failed")
                job.emit(JobEvent.ERROR, e)
            finally:
                self._current = None
                job.done.set()


def job_backend(runner, check: Callable[[object], None] | None = None):
    """The backend a job runs on: NoBackend where none is loaded; check(backend) may refuse it
    before anything starts (e.g. a replay needs the same model file)."""
    backend = runner.backend
    if backend is None:
        raise NoBackend()
    if check is not None:
        check(backend)
    return backend


def reply_job(runner: ModelRunner, messages: Sequence[PromptMessage], settings, reply_prefix_ids=(),
              check: Callable[[object], None] | None = None, dropped_messages: int | None = None
              ) -> Callable[[Job], None]:
    """A job that streams one reply from the runner's backend. check(backend) may raise to refuse
    the request before it starts (e.g. a replay needs the same model file); dropped_messages: the
    turns the reply being replayed or branched dropped (a local model's option)."""
    options = {"dropped_messages": dropped_messages} if dropped_messages is not None else {}

    def run(job: Job) -> None:
        backend = job_backend(runner, check)
        generation = backend.generate(messages, settings, job.cancelled, reply_prefix_ids=list(reply_prefix_ids),
                                      **options)
        job.emit(JobEvent.STARTED, generation)
        for event in generation:
            job.emit(JobEvent.TOKEN, event)
        job.emit(JobEvent.DONE, generation)
    return run


def candidates_job(runner: ModelRunner, messages: Sequence[PromptMessage], settings, n: int,
                   choice_settings: list | None = None) -> Callable[[Job], None]:
    """A job that writes n answers to one prompt as one batch (backend capability
    batched_candidates); choice_settings: each answer's own sampling settings. Events:
    ("started", batch), ("token", (i, TokenEvent)), ("candidate_done", (i, choice)) as each
    ends, then ("done", batch) or ("error", exception)."""
    def run(job: Job) -> None:
        backend = job_backend(runner)
        options = {"choice_settings": choice_settings} if choice_settings is not None else {}
        batch = backend.generate_candidates(messages, settings, n, job.cancelled, **options)
        job.emit(JobEvent.STARTED, batch)
        for i, event in batch.events():
            if event is not None:
                job.emit(JobEvent.TOKEN, (i, event))
            else:
                job.emit(JobEvent.CANDIDATE_DONE, (i, batch.choices[i]))
        job.emit(JobEvent.DONE, batch)
    return run


def prepare_job(runner: ModelRunner, messages: Sequence[PromptMessage], max_new_tokens: int) -> Callable[[Job], None]:
    """A job that computes a chat's context ahead of its next message (backend capability
    prepared_prompts; nothing for others). Cancel it before queueing a reply: it stops within
    one prefill chunk and keeps what it computed."""
    def run(job: Job) -> None:
        backend = runner.backend
        if backend is not None and backend.capabilities.prepared_prompts:
            cast("PreparableBackend", backend).prepare(messages, max_new_tokens, job.cancelled)
    return run


class NoBackend(Exception):
    """No model is loaded (and no server connected)."""

"""The one thread that runs the model for the server.

A model is not thread-safe (its KV cache holds the last prompt), so requests are served one at
a time, in order, by a single thread fed by a bounded waiting line. Each job hands its output
back to the event loop through an asyncio.Queue (via call_soon_threadsafe), so the loop never
waits on the model. Items put on a job's queue:

    ("started", {"prompt_tokens": n})   the prompt fits; tokens follow
    ("token", text)                     a piece of the reply
    ("done", stats)                     {"prompt_tokens", "completion_tokens", "finish_reason", ...}
    ("error", exception)                before "started" (the request was refused) or after
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from chatgui.common.types import SamplingSettings

log = logging.getLogger(__name__)


class QueueFull(Exception):
    pass


class ShuttingDown(Exception):
    pass


@dataclass
class Job:
    messages: list[dict]
    settings: SamplingSettings
    loop: asyncio.AbstractEventLoop
    output: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)

    def emit(self, kind: str, value=None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.output.put_nowait, (kind, value))
        except RuntimeError:       # the event loop is gone: nobody is listening any more
            self.cancel.set()


class GenerationWorker:
    def __init__(self, model, max_waiting: int = 8, lock=None):
        """lock: optional; held around each generation, so that the app's own engine worker can
        share this model object safely by taking the same lock."""
        self.model = model
        self.max_waiting = max_waiting
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="chatgui-server-model", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job; QueueFull when max_waiting others already wait."""
        with self._cond:
            if self._closing:
                raise ShuttingDown()
            # Jobs whose clients left still sit in the line until the thread skips them; they
            # should not make new requests look like overload.
            self._waiting = deque(j for j in self._waiting if not j.cancel.is_set())
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull()
            self._waiting.append(job)
            self._cond.notify()

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(not j.cancel.is_set() for j in self._waiting)

    @property
    def busy(self) -> bool:
        return self._current is not None

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every job (running or waiting) and end the thread."""
        with self._cond:
            self._closing = True
            for job in self._waiting:
                job.cancel.set()
                job.emit("error", ShuttingDown())
            self._waiting.clear()
            if self._current is not None:
                self._current.cancel.set()
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._current = self._waiting.popleft()
            try:
                if not job.cancel.is_set():
                    with self.lock:
                        self._serve(job)
            finally:
                self._current = None

    def _serve(self, job: Job) -> None:
        try:
            gen = self.model.generate(job.messages, job.settings, job.cancel)
        except Exception as e:   # noqa: BLE001 - PromptTooLongError, TemplateError, ...: the caller maps it
            job.emit("error", e)
            return
        job.emit("started", {"prompt_tokens": gen.stats.prompt_tokens})
        sent = []
        try:
            for event in gen:
                if event.text:
                    sent.append(event.text)
                    job.emit("token", event.text)
        except Exception as e:   # noqa: BLE001 - e.g. out of memory mid-reply: report, keep serving
            log.exception("generation failed")
            job.emit("error", e)
            return
        # The engine flushes text it held back (a possible stop string) into gen.text at the end
        # without an event; send it too.
        sent_text = "".join(sent)
        if gen.text.startswith(sent_text) and len(gen.text) > len(sent_text):
            job.emit("token", gen.text[len(sent_text):])
        st = gen.stats
        if st.finish_reason == "cancelled" and self._closing:
            job.emit("error", ShuttingDown())
            return
        job.emit("done", {"prompt_tokens": st.prompt_tokens, "completion_tokens": st.generated_tokens,
                          "finish_reason": st.finish_reason, "time_to_first_token": st.time_to_first_token,
                          "tokens_per_second": st.tokens_per_second})

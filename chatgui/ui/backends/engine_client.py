"""The app's side of the model runner (chatgui.common.runner): a thin QObject adapter.

Everything that touches the model runs as a job on the runner's one thread; what a job reports
reaches the GUI as Qt signals. Signals emitted from the runner thread are delivered to GUI
objects queued, so slots always run on the GUI thread. A reply is a ReplyHandle with its own
signals: the reply and compare controllers consume it the same way. The engine (and so torch)
is imported inside jobs, on first use: the window appears first. Stopping a reply sets the
job's cancel flag directly from the GUI thread, because a queued "stop" would wait until the
reply had finished anyway.
"""
from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import time
from typing import Sequence

from PySide6.QtCore import QObject, Signal

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import ReplyMeta, TokenRecord
from chatgui.common.runner import (Job, JobEvent, ModelRunner, QueueFull, ShuttingDown, candidates_job, prepare_job,
                                   reply_job)
from chatgui.common.types import GenerationStats, SamplingSettings
from chatgui.engine.errors import ModelLoadError
from chatgui.session import failures as session_failures
from chatgui.session.failures import FailureKind, Refused, describe_failure
from chatgui.session.replies import assemble_reply_meta, finished_payload
from chatgui.models.naming import display_name
from chatgui.ui.common.i18n import translate

TOKEN_BATCH_SECONDS = 0.03   # send tokens to the GUI at most ~30 times a second
EXIT_WAIT_S = 60.0

# Runners still busy when their window closed (a model load cannot be interrupted). They are
# waited for at exit, so torch is not torn down under a running job; chatgui.ui.app.main does
# not wait: it leaves with os._exit once everything is saved.
_still_running: list[ModelRunner] = []


def _wait_for_runners() -> None:
    for runner in _still_running:
        if not runner.close(EXIT_WAIT_S):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


atexit.register(_wait_for_runners)


def model_mismatch_text(loaded_name: str, loaded_sha256: str, wanted_sha256: str) -> str:
    return session_failures.model_mismatch_text(loaded_name, loaded_sha256, wanted_sha256, translate)


class _Candidate:
    """One answer of a batch, shaped like a Generation for reply_sink: its own text, tokens and
    seed, with the batch's prompt figures (prompt tokens, dropped turns, time to first token)."""

    def __init__(self, batch, choice):
        shared = batch.stats
        self.text, self.token_ids, self.stats = choice.text, choice.token_ids, choice.stats
        for name in ("prompt_tokens", "dropped_messages", "time_to_first_token", "tokens_per_second"):
            setattr(self.stats, name, getattr(shared, name))


class ReplyHandle(QObject):
    """One reply being written. Signals arrive on the GUI thread, in this order: started once,
    tokens any number of times, then finished or failed."""
    # Each signal carries the request id first, so one receiver can tell its replies apart.
    started = Signal(int, object)     # {"prompt_tokens", "dropped_messages", "seed", "context_length"}
    tokens = Signal(int, str, object)  # new text, [TokenRecord, ...]
    finished = Signal(int, object)    # ReplyMeta.to_dict() plus "text" (the whole reply)
    failed = Signal(int, str, str)    # kind (a session.failures.FailureKind's value), message

    def __init__(self, request_id: int, parent=None):
        super().__init__(parent)
        self.request_id = request_id
        self.job: Job | None = None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()


def started_info(model, stats: GenerationStats) -> dict:
    """ReplyHandle.started's payload: the prompt as the reply got it (after dropping turns)."""
    return {"prompt_tokens": stats.prompt_tokens, "seed": stats.seed, "dropped_messages": stats.dropped_messages,
            "context_length": model.context_length}


def connect_reply(handle: ReplyHandle, on_started, on_tokens, on_finished, on_failed) -> None:
    """Connect a reply's signals to a controller's slots (bound methods of a QObject, so that
    they are delivered queued to its thread)."""
    handle.started.connect(on_started)
    handle.tokens.connect(on_tokens)
    handle.finished.connect(on_finished)
    handle.failed.connect(on_failed)


class EngineWorker(QObject):
    """The model-wide signals, and the job bodies that run on the runner thread."""
    devices_found = Signal(object)          # ["auto", "cpu", "cuda"?]
    load_started = Signal(str)              # model path
    model_loaded = Signal(object)           # ModelInfo
    load_failed = Signal(str)               # a sentence for the user
    model_hashed = Signal(str, str)         # model path, sha256
    tokens_counted = Signal(int, int)       # request id, prompt tokens

    def __init__(self, runner: ModelRunner):
        super().__init__()
        self.runner = runner
        self._hashes: dict[str, str] = {}   # model path -> sha256, computed once per file
        self._devices_reported = False

    @property
    def closing(self) -> threading.Event:
        return self.runner.closing

    @property
    def model(self):
        """The backend in use (a ChatBackend). Read it only from a job."""
        return self.runner.backend

    def release_backend(self) -> None:
        """Let go of the backend in use and its memory. Only from a job."""
        self.runner.backend = None
        gc.collect()
        self._empty_gpu_cache()

    def use_backend(self, backend) -> None:
        """Make backend the one in use and announce it. Only from a job."""
        self.runner.backend = backend
        self.model_loaded.emit(backend.info())

    # -- models (on the runner thread) ---------------------------------------------------------
    def probe_devices(self) -> None:
        if not self._devices_reported and not self.closing.is_set():
            from chatgui.engine import available_devices
            self._devices_reported = True
            self.devices_found.emit(list(available_devices()))

    def load(self, path: str, device: str, context_length: int) -> None:
        if self.closing.is_set():
            return
        self.load_started.emit(path)
        try:
            from chatgui.engine import load_model
            self.probe_devices()
            model = load_model(path, device=device or "auto", context_length=context_length or None)
            model.name = display_name(path)
        except ModelLoadError as e:
            self.load_failed.emit(str(e))
            return
        except MemoryError:
            self.load_failed.emit(self.tr("Cannot load model {path}: there is not enough memory.").format(path=path))
            return
        except Exception as e:   # noqa: BLE001 - any failure must reach the user, not kill the thread
            self.load_failed.emit(self.tr("Cannot load model {path}: {error}").format(
                path=path, error=f"{type(e).__name__}: {e}"))
            return
        # Only now let go of the previous model: a failed load leaves it in use.
        self.release_backend()
        self._hashes.pop(str(model.path), None)   # the file may have changed since it was hashed
        self.use_backend(model)

    def count_tokens(self, request_id: int, messages: Sequence[PromptMessage]) -> None:
        if self.model is not None and not self.closing.is_set():
            try:
                self.tokens_counted.emit(request_id, self.model.count_tokens(messages))
            except Exception:   # noqa: BLE001 - only a status display
                pass

    def model_hash(self, model) -> str | None:
        """The model file's sha256, computed once per file and announced (None for a server)."""
        path = str(model.path)
        if path not in self._hashes:
            self._hashes[path] = model.sha256
            if self._hashes[path]:
                self.model_hashed.emit(path, self._hashes[path])
        return self._hashes[path]

    # -- replies (sinks called on the runner thread) ------------------------------------------
    def reply_sink(self, handle: ReplyHandle, settings: SamplingSettings):
        """Turn a reply job's events into the handle's signals, tokens batched ~30 times a second."""
        state = {"texts": [], "records": [], "last": 0.0, "started": False, "keep": True}

        def flush():
            if state["texts"]:
                handle.tokens.emit(handle.request_id, "".join(state["texts"]), state["records"])
                state["texts"], state["records"] = [], []

        def sink(job: Job, kind: str, value) -> None:
            if kind == JobEvent.STARTED:
                model, stats = self.model, value.stats
                state["started"] = True
                state["keep"] = model.capabilities.token_probabilities
                handle.started.emit(handle.request_id, started_info(model, stats))
            elif kind == JobEvent.TOKEN:
                state["texts"].append(value.text)
                if state["keep"]:
                    state["records"].append(TokenRecord.from_event(value))
                now = time.monotonic()
                if now - state["last"] >= TOKEN_BATCH_SECONDS:
                    flush()
                    state["last"] = now
            elif kind == JobEvent.DONE:
                flush()
                model = self.model
                handle.finished.emit(handle.request_id,
                                     finished_payload(self.reply_meta(model, value.stats, len(value.token_ids),
                                                                      settings), value.text))
                if model.capabilities.replay and not self.closing.is_set():
                    self.model_hash(model)   # once, after the first reply, so that nothing waits for it
            elif kind == JobEvent.ERROR:
                flush()
                handle.failed.emit(handle.request_id, *self.describe_failure(value, state["started"]))
        return sink

    def candidates_sink(self, handles: list[ReplyHandle], settings: SamplingSettings | list[SamplingSettings]):
        """A batch of n answers: candidate i's events go to handles[i], as one reply's do.
        settings: the batch's, or each candidate's own."""
        own = settings if isinstance(settings, list) else [settings] * len(handles)
        sinks = [self.reply_sink(h, s) for h, s in zip(handles, own)]
        state = {"batch": None, "ended": set()}

        def end(job: Job, i: int, kind: str, value) -> None:
            if i not in state["ended"]:
                state["ended"].add(i)
                sinks[i](job, kind, value)

        def sink(job: Job, kind: str, value) -> None:
            if kind == JobEvent.STARTED:
                state["batch"] = value
                for i, one in enumerate(sinks):
                    one(job, JobEvent.STARTED, _Candidate(value, value.choices[i]))
            elif kind == JobEvent.TOKEN:
                i, event = value
                sinks[i](job, JobEvent.TOKEN, event)
            elif kind == JobEvent.CANDIDATE_DONE:
                i, choice = value
                end(job, i, JobEvent.DONE, _Candidate(state["batch"], choice))
            elif kind == JobEvent.DONE:
                for i, choice in enumerate(value.choices):
                    end(job, i, JobEvent.DONE, _Candidate(value, choice))
            elif kind == JobEvent.ERROR:
                for i in range(len(sinks)):
                    end(job, i, JobEvent.ERROR, value)
        return sink

    def reply_meta(self, model, stats: GenerationStats, token_count: int, settings: SamplingSettings) -> ReplyMeta:
        """What a finished reply records (session/replies.py), with the model file's hash if known."""
        info = model.info()
        return assemble_reply_meta(info, model.context_length, stats, token_count, settings,
                                   self._hashes.get(info.path) if info.is_local else None)

    def describe_failure(self, error: BaseException, started: bool) -> tuple[FailureKind, str]:
        kind, message = describe_failure(error, started, translate)
        if kind is FailureKind.OOM:
            self._empty_gpu_cache()
        return kind, message

    def replay_check(self, expect_sha256: str | None):
        """A reply job's check: a replay must use the model file it was made with."""
        def check(model) -> None:
            if expect_sha256 and model.capabilities.replay and self.model_hash(model) != expect_sha256:
                raise Refused(FailureKind.MODEL_MISMATCH, model_mismatch_text(model.name, self.model_hash(model),
                                                                              expect_sha256))
        return check

    @staticmethod
    def _empty_gpu_cache() -> None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


class EngineClient(QObject):
    """The GUI-thread side: owns the runner, submits jobs, hands out reply handles."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runner = ModelRunner("chatgui-engine")
        self.worker = EngineWorker(self.runner)
        self._next_id = 0
        self._replies: dict[int, ReplyHandle] = {}
        self._ended: list[ReplyHandle] = []
        self._preparing: Job | None = None   # a chat's context computed ahead (prepare)
        self._prepare_args: tuple = ()

    def run(self, fn) -> Job | None:
        """Run fn() on the runner thread, after the jobs already queued (None once closing). A
        chat being prepared gives way and goes on afterwards from where it stopped."""
        preparing = self._preparing is not None and not self._preparing.done.is_set()
        resume = self._prepare_args if preparing else None
        self.stop_preparing()
        try:
            job = self.runner.submit(lambda _job: fn())
        except ShuttingDown:
            return None
        if resume is not None:
            self.prepare(*resume)
        return job

    def prepare(self, messages: Sequence[PromptMessage], max_new_tokens: int) -> None:
        """Compute the chat's context while the user reads and types (see ChatModel.prepare). It
        gives way to any other job, which stops it within one prefill chunk; what it computed
        stays in the cache."""
        self.stop_preparing()
        self._prepare_args = (messages, max_new_tokens)
        try:
            self._preparing = self.runner.submit(prepare_job(self.runner, messages, max_new_tokens))
        except (ShuttingDown, QueueFull):
            self._preparing = None

    def stop_preparing(self) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
            self._preparing = None

    def load(self, path: str, device: str = "auto", context_length: int | None = None) -> None:
        path, device, ctx = str(path), device or "auto", int(context_length or 0)
        self.run(lambda: self.worker.load(path, device, ctx))

    def probe_devices(self) -> None:
        self.run(self.worker.probe_devices)

    def generate(self, messages: Sequence[PromptMessage], sampling: dict, connect=None, reply_prefix_ids=(),
                 expect_sha256=None, dropped_messages: int | None = None) -> ReplyHandle:
        """Queue a reply. connect(handle) is called before the job is queued, so that no signal can
        be emitted before its receivers are connected. reply_prefix_ids: the reply starts with these
        tokens (branch from a token); expect_sha256: refuse a different model file (replay);
        dropped_messages: start the prompt where the replayed or branched reply's started."""
        self.stop_preparing()
        handle = self.new_handle(connect)
        settings = SamplingSettings.from_dict(sampling)
        fn = reply_job(self.runner, messages, settings, reply_prefix_ids, self.worker.replay_check(expect_sha256),
                       dropped_messages)
        try:
            handle.job = self.runner.submit(fn, self.worker.reply_sink(handle, settings))
        except ShuttingDown:
            pass   # the window is closing: nothing will answer, and nobody is waiting
        return handle

    def generate_candidates(self, messages: Sequence[PromptMessage], sampling: dict, n: int, connect,
                            each: list[dict] | None = None) -> list[ReplyHandle]:
        """Queue n answers to the same chat, decoded as one batch: one handle per answer, each
        with the signals of a reply (connect(handle) is called for each before the job is queued).
        each: every answer's own sampling (Compare). Stopping any of them stops the batch."""
        self.stop_preparing()
        settings = SamplingSettings.from_dict(sampling)
        own = [SamplingSettings.from_dict(s) for s in each] if each is not None else None
        handles = [self.new_handle(connect) for _ in range(n)]
        try:
            job = self.runner.submit(candidates_job(self.runner, messages, settings, n, own),
                                     self.worker.candidates_sink(handles, own or settings))
        except ShuttingDown:
            return handles
        for handle in handles:
            handle.job = job
        return handles

    def new_handle(self, connect=None, handle_type=ReplyHandle) -> ReplyHandle:
        """A registered handle (of handle_type, a ReplyHandle that may add signals) whose receivers
        are connected (by connect) before any job is queued."""
        self._next_id += 1
        handle = handle_type(self._next_id, self)
        self._replies[handle.request_id] = handle
        handle.finished.connect(self._on_reply_done)
        handle.failed.connect(self._on_reply_done)
        if connect is not None:
            connect(handle)
        return handle

    def _on_reply_done(self, request_id: int, *_details) -> None:
        # Deleted only with the next reply's end: a handle deleted while its last signal is still
        # queued for another receiver would take that delivery with it.
        for old in self._ended:
            old.deleteLater()
        self._ended = [h for h in [self._replies.pop(request_id, None)] if h is not None]

    def cancel(self, request_id: int) -> None:
        handle = self._replies.get(request_id)
        if handle is not None:
            handle.cancel()

    def count_tokens(self, messages: Sequence[PromptMessage]) -> int:
        self._next_id += 1
        request_id = self._next_id
        self.run(lambda: self.worker.count_tokens(request_id, messages))
        return request_id

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop every reply, end the runner thread and wait for it. False if it is still busy (a
        model load cannot be interrupted); the caller must then exit the process without waiting."""
        if self.runner.close(timeout_ms / 1000):
            return True
        _still_running.append(self.runner)
        return False

    def wait_closed(self, timeout_ms: int) -> bool:
        return self.runner.close(timeout_ms / 1000)

"""The engine worker: owns the model and runs it in its own thread.

The GUI talks to it only through queued signals (EngineClient below) and gets plain data back.
The engine (and so torch) is imported here, inside the worker thread, on first use: the window
appears first. Stopping a reply is a threading.Event per request, set directly by the GUI
thread, because a queued "stop" call would wait until the reply had finished anyway.
"""
from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

from chatgui.engine.errors import ModelLoadError, PromptTooLongError

from .i18n import translate

TOKEN_BATCH_SECONDS = 0.03   # send tokens to the GUI at most ~30 times a second
TOP_ALTERNATIVES = 5
EXIT_WAIT_MS = 60_000

# Engine threads still busy when their window closed (a model load cannot be interrupted). They
# are kept referenced, since destroying a running QThread aborts the process, and waited for at
# exit; chatgui.ui.app.main does not wait: it leaves with os._exit once everything is saved.
_still_running: list = []


def _wait_for_engine_threads() -> None:
    for thread, _worker in _still_running:
        if not thread.wait(EXIT_WAIT_MS):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


atexit.register(_wait_for_engine_threads)


def token_record(event) -> dict:
    """What is kept of each token: for the token view that colours text by probability.
    "p"/"alts": the model's own distribution; "sp"/"salts": the one it was drawn from, after the
    sampling settings (repetition penalty, temperature, top-k, top-p, min-p)."""
    return {"id": event.token_id, "t": event.text, "p": round(event.prob, 6),
            "alts": [[a.token_id, a.text, round(a.prob, 6)] for a in event.alternatives[:TOP_ALTERNATIVES]],
            "sp": round(event.sampled_prob, 6),
            "salts": [[a.token_id, a.text, round(a.prob, 6)]
                      for a in event.sampled_alternatives[:TOP_ALTERNATIVES]]}


def model_mismatch_text(loaded_name: str, loaded_sha256: str, wanted_sha256: str) -> str:
    return translate("EngineWorker", "This reply was made with a different model file (sha256 {wanted}…) than the "
                     "one loaded now ({name}, sha256 {loaded}…), so replaying it would not give the same answer. "
                     "Load the model file it was made with to replay it.").format(
                         wanted=wanted_sha256[:12], name=loaded_name, loaded=loaded_sha256[:12])


def _is_remote_error(error: BaseException) -> bool:
    # Not imported up front: the remote backend (httpx) loads only when it is used.
    errors = sys.modules.get("chatgui.remote.errors")
    return errors is not None and isinstance(error, errors.RemoteError)


class EngineWorker(QObject):
    devices_found = Signal(object)          # ["auto", "cpu", "cuda"?]
    load_started = Signal(str)              # model path
    model_loaded = Signal(object)           # {"name", "path", "device", "context_length"}
    load_failed = Signal(str)               # a sentence for the user
    model_hashed = Signal(str, str)         # model path, sha256
    fetch_progress = Signal(str, float)     # stage, fraction
    fetch_finished = Signal(str)            # path of the fetched default model
    fetch_failed = Signal(str)
    reply_started = Signal(int, object)     # request id, {"prompt_tokens", "dropped_messages", "seed", ...}
    reply_tokens = Signal(int, str, object)  # request id, new text, [token_record, ...]
    reply_finished = Signal(int, object)    # request id, stats and settings for the message meta
    reply_failed = Signal(int, str, str)    # request id, kind, message ("no_model", "prompt_too_long", "oom", "error")
    tokens_counted = Signal(int, int)       # request id, prompt tokens

    def __init__(self):
        super().__init__()
        self.model = None
        self.closing = threading.Event()
        self._hashes: dict[str, str] = {}   # model path -> sha256, computed once per file
        self._devices_reported = False

    # -- models ----------------------------------------------------------------------------
    @Slot()
    def probe_devices(self) -> None:
        if not self._devices_reported and not self.closing.is_set():
            from chatgui.engine import available_devices
            self._devices_reported = True
            self.devices_found.emit(list(available_devices()))

    @Slot(str, str, int)
    def load(self, path: str, device: str, context_length: int) -> None:
        if self.closing.is_set():
            return
        self.load_started.emit(path)
        try:
            from chatgui.engine import load_model
            self.probe_devices()
            model = load_model(path, device=device or "auto", context_length=context_length or None)
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
        old, self.model = self.model, model
        del old
        self._hashes.pop(str(model.path), None)   # the file may have changed since it was hashed
        gc.collect()
        self._empty_gpu_cache()
        self.model_loaded.emit({"name": model.name, "path": str(model.path), "device": str(model.device),
                                "context_length": model.context_length})

    @Slot()
    def fetch_default(self) -> None:
        from chatgui.models.default_model import ModelFetchError, fetch_default_model
        try:
            path = fetch_default_model(lambda stage, frac: self.fetch_progress.emit(stage, float(frac)))
        except (ModelFetchError, OSError) as e:
            self.fetch_failed.emit(str(e))
            return
        self.fetch_finished.emit(str(path))

    # -- replies ---------------------------------------------------------------------------
    @Slot(int, object)
    def count_tokens(self, request_id: int, messages: list) -> None:
        if self.model is not None and not self.closing.is_set():
            try:
                self.tokens_counted.emit(request_id, self.model.count_tokens(messages))
            except Exception:   # noqa: BLE001 - only a status display
                pass

    @Slot(int, object, object, object, object)
    def generate_with(self, request_id: int, messages: list, sampling: dict, cancel: threading.Event,
                      options: dict) -> None:
        """generate() with options: "reply_prefix_ids" (the reply starts with these tokens: branch
        from a token, replay of a branch), "expect_sha256" (replay: refuse a different model file)."""
        self.generate(request_id, messages, sampling, cancel, options)

    @Slot(int, object, object, object)
    def generate(self, request_id: int, messages: list, sampling: dict, cancel: threading.Event,
                 options: dict | None = None) -> None:
        if self.closing.is_set():
            return
        model = self.model
        if model is None:
            self.reply_failed.emit(request_id, "no_model",
                                   self.tr("No model is loaded. Choose a model file in the settings."))
            return
        options = options or {}
        expected = options.get("expect_sha256")
        if expected and self._model_hash(model) != expected:
            self.reply_failed.emit(request_id, "model_mismatch",
                                   model_mismatch_text(model.name, self._model_hash(model), expected))
            return
        from chatgui.engine import SamplingSettings
        settings = SamplingSettings.from_dict(sampling)
        try:
            generation = model.generate(messages, settings, cancel,
                                        reply_prefix_ids=[int(t) for t in options.get("reply_prefix_ids") or ()])
        except PromptTooLongError as e:
            self.reply_failed.emit(request_id, "prompt_too_long", str(e))
            return
        except Exception as e:   # noqa: BLE001 - e.g. the chat template refused the messages
            # A remote server's refusal (RemoteError) is already a sentence for the user.
            self.reply_failed.emit(request_id, "error", str(e) if _is_remote_error(e) else
                                   self.tr("The reply could not start: {error}").format(error=e))
            return
        stats = generation.stats
        self.reply_started.emit(request_id, {"prompt_tokens": stats.prompt_tokens, "seed": stats.seed,
                                             "dropped_messages": stats.dropped_messages,
                                             "context_length": model.context_length})
        failure = self._stream(request_id, generation, getattr(model, "has_token_probabilities", True))
        if failure:
            self.reply_failed.emit(request_id, *failure)
        else:
            self.reply_finished.emit(request_id, self._finished_meta(model, generation, settings))
        path = str(model.path)
        if path not in self._hashes and not self.closing.is_set():
            # Hash the model file once, after its first reply, so that nothing waits for it.
            self._hashes[path] = model.sha256
            if self._hashes[path]:   # None: a remote model has no file to hash
                self.model_hashed.emit(path, self._hashes[path])

    def _model_hash(self, model) -> str:
        """The loaded model file's sha256, computed once per file (and announced)."""
        path = str(model.path)
        if path not in self._hashes:
            self._hashes[path] = model.sha256
            self.model_hashed.emit(path, self._hashes[path])
        return self._hashes[path]

    def _stream(self, request_id: int, generation, keep_tokens: bool = True) -> tuple[str, str] | None:
        """keep_tokens False: the model has no token probabilities (a remote server): send text only."""
        texts, records, last_sent = [], [], 0.0
        try:
            for event in generation:
                texts.append(event.text)
                if keep_tokens:
                    records.append(token_record(event))
                now = time.monotonic()
                if now - last_sent >= TOKEN_BATCH_SECONDS:
                    self.reply_tokens.emit(request_id, "".join(texts), records)
                    texts, records, last_sent = [], [], now
        except Exception as e:   # noqa: BLE001
            failure = self._describe_failure(e)
        else:
            failure = None
        if texts:
            self.reply_tokens.emit(request_id, "".join(texts), records)
        return failure

    def _describe_failure(self, error: Exception) -> tuple[str, str]:
        if _is_remote_error(error):   # network, 401/404/429/5xx, malformed stream: already a sentence
            return "error", str(error)
        import torch
        if isinstance(error, torch.cuda.OutOfMemoryError):
            self._empty_gpu_cache()
            return "oom", self.tr("The GPU ran out of memory while writing the reply. Try a shorter chat, a "
                                  "smaller context length, or the CPU.")
        return "error", self.tr("The reply failed: {error}").format(error=f"{type(error).__name__}: {error}")

    def _reply_meta(self, model, generation, settings) -> dict:
        st = generation.stats
        return {"text": generation.text, "sampling": settings.to_dict(), "seed": st.seed,
                "model": model.name, "model_path": str(model.path), "device": str(model.device),
                "model_sha256": self._hashes.get(str(model.path)), "prompt_tokens": st.prompt_tokens,
                "tokens": len(generation.token_ids), "dropped_messages": st.dropped_messages,
                "finish_reason": st.finish_reason, "time_to_first_token": round(st.time_to_first_token, 4),
                "tokens_per_second": round(st.tokens_per_second, 3), "context_length": model.context_length}

    def _finished_meta(self, model, generation, settings) -> dict:
        meta = self._reply_meta(model, generation, settings)
        if str(getattr(model, "device", "")) == "remote":   # see remote_connector.remote_reply_meta
            from .remote_connector import remote_reply_meta
            meta = remote_reply_meta(model, generation, meta)
        return meta

    @staticmethod
    def _empty_gpu_cache() -> None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


class EngineClient(QObject):
    """The GUI-thread side: starts the worker thread and forwards requests as queued signals."""

    _load = Signal(str, str, int)
    _generate = Signal(int, object, object, object)
    _generate_with = Signal(int, object, object, object, object)
    _count = Signal(int, object)
    _fetch = Signal()
    _probe = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = EngineWorker()
        self.thread = QThread()
        self.thread.setObjectName("chatgui-engine")
        self.worker.moveToThread(self.thread)
        self._load.connect(self.worker.load)
        self._generate.connect(self.worker.generate)
        self._generate_with.connect(self.worker.generate_with)
        self._count.connect(self.worker.count_tokens)
        self._fetch.connect(self.worker.fetch_default)
        self._probe.connect(self.worker.probe_devices)
        self._next_id = 0
        self._cancels: dict[int, threading.Event] = {}
        self.thread.start()

    def load(self, path: str, device: str = "auto", context_length: int | None = None) -> None:
        self._load.emit(str(path), device or "auto", int(context_length or 0))

    def fetch_default_model(self) -> None:
        self._fetch.emit()

    def probe_devices(self) -> None:
        self._probe.emit()

    def generate(self, messages: list[dict], sampling: dict, **options) -> int:
        """Queue a reply; returns its request id (the id on every signal about it). options:
        reply_prefix_ids=[...] (the reply starts with these tokens), expect_sha256="..." (replay)."""
        self._next_id += 1
        self._cancels[self._next_id] = threading.Event()
        if options:
            self._generate_with.emit(self._next_id, messages, dict(sampling), self._cancels[self._next_id],
                                     dict(options))
        else:
            self._generate.emit(self._next_id, messages, dict(sampling), self._cancels[self._next_id])
        return self._next_id

    def cancel(self, request_id: int) -> None:
        event = self._cancels.pop(request_id, None)
        if event is not None:
            event.set()

    def forget(self, request_id: int) -> None:
        self._cancels.pop(request_id, None)

    def count_tokens(self, messages: list[dict]) -> int:
        self._next_id += 1
        self._count.emit(self._next_id, messages)
        return self._next_id

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop every reply, end the thread and wait for it. False if it is still busy (a model
        load cannot be interrupted); the caller must then exit the process without waiting."""
        self.worker.closing.set()
        for request_id in list(self._cancels):
            self.cancel(request_id)
        self.thread.quit()
        if self.thread.wait(timeout_ms):
            return True
        _still_running.append((self.thread, self.worker))
        return False

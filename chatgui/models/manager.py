"""Downloads running in the background, for a UI: one plain thread per download, no Qt.

Listeners are called from the download's thread with (event, key, value):
  "progress" Progress (at most ~10 a second), "finished" Path, "paused" None, "cancelled" None,
  "failed" str (the message for the user). A UI forwards them to its own thread (a queued signal).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from chatgui.common.paths import models_dir

from .download import DownloadSpec, partial_for, pull
from .errors import Cancelled, ModelFetchError, Paused
from .library import add_file
from .transfer import Control, Progress

Listener = Callable[[str, str, object], None]
PROGRESS_INTERVAL = 0.1


@dataclass
class DownloadJob:
    spec: DownloadSpec
    control: Control = field(default_factory=Control)
    thread: threading.Thread | None = None
    last: Progress | None = None
    ended: bool = False          # its last event is on its way: a listener must not see it running

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and not self.ended


class DownloadManager:
    def __init__(self, folder: Path | None = None):
        self._folder = folder
        self._jobs: dict[str, DownloadJob] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self._folder or models_dir()

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _emit(self, event: str, key: str, value=None) -> None:
        for fn in list(self._listeners):
            fn(event, key, value)

    # -- downloads ------------------------------------------------------------------------------
    def start(self, spec: DownloadSpec) -> DownloadJob:
        """Start (or resume) a download; a second start of a running one returns the same job."""
        with self._lock:
            job = self._jobs.get(spec.key)
            if job is not None and job.running:
                return job
            job = self._jobs[spec.key] = DownloadJob(spec)
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"download-{spec.key}", daemon=True)
            job.thread.start()
            return job

    def _run(self, job: DownloadJob) -> None:
        key, last_sent = job.spec.key, [0.0]

        def progress(p: Progress) -> None:
            job.last = p
            now = time.monotonic()
            if now - last_sent[0] >= PROGRESS_INTERVAL or p.stage != "download":
                last_sent[0] = now
                self._emit("progress", key, p)

        end: tuple[str, object]
        try:
            end = ("finished", pull(job.spec, progress=progress, control=job.control, folder=self.folder))
        except Paused:
            end = ("paused", None)
        except Cancelled:
            end = ("cancelled", None)
        except ModelFetchError as e:
            end = ("failed", str(e))
        except OSError as e:
            end = ("failed", f"Could not download {job.spec.name}: {e.strerror or e}")
        job.ended = True
        self._emit(end[0], key, end[1])

    def job(self, key: str) -> DownloadJob | None:
        return self._jobs.get(key)

    def is_running(self, key: str) -> bool:
        job = self._jobs.get(key)
        return job is not None and job.running

    def running_keys(self) -> list[str]:
        return [key for key, job in list(self._jobs.items()) if job.running]

    def pause(self, key: str) -> None:
        job = self._jobs.get(key)
        if job is not None and job.running:
            job.control.pause()

    def cancel(self, key: str) -> None:
        """Stop and delete what was downloaded (also for a download paused in an earlier session)."""
        job = self._jobs.get(key)
        if job is not None and job.running:
            job.control.cancel()
        elif job is not None:
            partial_for(job.spec, self.folder).discard()
            self._emit("cancelled", key)

    def forget_partial(self, spec: DownloadSpec) -> None:
        if not self.is_running(spec.key):
            partial_for(spec, self.folder).discard()
            self._emit("cancelled", spec.key)

    def partial_bytes(self, spec: DownloadSpec) -> int:
        """Bytes of an unfinished download of spec on disk (kept across restarts), 0 if none."""
        p = partial_for(spec, self.folder)
        return p.size() if p.state_path.exists() else 0

    def wait(self, key: str, timeout: float | None = None) -> None:
        job = self._jobs.get(key)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)

    # -- adding a file the user has -----------------------------------------------------------------
    def add_file(self, path: str, copy: bool) -> threading.Thread:
        """Copy (or link) a .gguf off the caller's thread; "finished" or "failed" with key = path."""
        def run():
            try:
                self._emit("finished", str(path), add_file(path, copy, self.folder))
            except ModelFetchError as e:
                self._emit("failed", str(path), str(e))
            except OSError as e:
                self._emit("failed", str(path), f"Could not add {path}: {e.strerror or e}")
        t = threading.Thread(target=run, name="add-model-file", daemon=True)
        t.start()
        return t

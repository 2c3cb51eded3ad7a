"""Download bookkeeping shared by every source: progress reports, pause/cancel, the partial file
and its small state file (which is what lets a download resume after a restart or a kill)."""
from __future__ import annotations

import errno
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chatgui.common.io import atomic_write_json

from .errors import Cancelled, DiskFullError, Paused

BLOCK = 1 << 20


@dataclass(frozen=True)
class Progress:
    done: int                  # bytes so far
    total: int | None          # bytes in all, when known
    speed: float               # bytes per second over the last few seconds
    eta: float | None          # seconds left, when it can be told
    stage: str = "download"    # "waiting" (another download holds the lock), "download", "verify", "install"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


class RateMeter:
    """Bytes per second over a sliding window, and the time left at that speed."""

    def __init__(self, window: float = 3.0, clock=time.monotonic):
        self.window, self.clock = window, clock
        self.samples: deque[tuple[float, int]] = deque()

    def progress(self, done: int, total: int | None, stage: str = "download") -> Progress:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.popleft()
        t0, d0 = self.samples[0]
        speed = (done - d0) / (now - t0) if now > t0 and done >= d0 else 0.0
        eta = (total - done) / speed if total and speed > 0 else None
        return Progress(done, total, speed, eta, stage)


class Control:
    """Pause or cancel a running download from another thread."""

    def __init__(self):
        self._event = threading.Event()
        self.cancelled = False

    def pause(self) -> None:
        self._event.set()

    def cancel(self) -> None:
        self.cancelled = True
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until paused or cancelled (True) or timeout seconds have passed (False)."""
        return self._event.wait(timeout)

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled() if self.cancelled else Paused()


def disk_full(e: OSError, folder: Path, needed: int | None, kept: int) -> DiskFullError:
    free = _free_bytes(folder)
    need = f", the download needs {needed / 1e6:,.0f} MB more" if needed else ""
    return DiskFullError(f"The disk is full ({free / 1e6:,.0f} MB free in {folder}{need}). "
                         f"What was downloaded so far ({kept / 1e6:,.0f} MB) is kept: free some space, then "
                         f"resume the download. ({e.strerror or e})")


def _free_bytes(folder: Path) -> int:
    import shutil
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def is_disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))


class PartialDownload:
    """models/.partial/<file>.part (the bytes so far) and <file>.json (what they are).

    The state names the source the bytes came from and, for chunked sources, how many chunks are
    complete and where they end: bytes past that point (a chunk cut short by a kill) are cut off
    before resuming."""

    def __init__(self, folder: Path, file_name: str):
        self.folder = folder
        self.part = folder / (file_name + ".part")
        self.state_path = folder / (file_name + ".json")

    def state(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_state(self, data: dict) -> None:
        atomic_write_json(self.state_path, data)

    def size(self) -> int:
        try:
            return self.part.stat().st_size
        except OSError:
            return 0

    def start_over(self, state: dict) -> None:
        self.part.unlink(missing_ok=True)
        self.part.touch()
        self.save_state(state)

    def discard(self) -> None:
        for p in (self.part, self.state_path):
            p.unlink(missing_ok=True)

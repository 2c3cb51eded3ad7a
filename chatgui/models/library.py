"""The models on this machine: catalog files in the models folder, and .gguf files the user added
(copied into the folder, or used in place: those are remembered in linked.json and never deleted
from where they are, only forgotten)."""
from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chatgui.common.io import atomic_write_json, atomic_writer, sha256_file
from chatgui.common.paths import models_dir

from .catalog import CatalogEntry, load_catalog
from .download import GGUF_MAGIC
from .errors import ModelFetchError
from .naming import catalog_entry_for, display_name
from .transfer import disk_full, is_disk_full

LINKED = "linked.json"


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    name: str
    size: int
    entry: CatalogEntry | None
    in_place: bool              # a file the user added without copying it


def _linked(folder: Path) -> list[str]:
    try:
        data = json.loads((folder / LINKED).read_text(encoding="utf-8"))
        return [p for p in data if isinstance(p, str)] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def installed_models(folder: Path | None = None) -> list[InstalledModel]:
    folder = folder or models_dir()
    out = []
    paths = [(p, False) for p in sorted(folder.glob("*.gguf"))]
    paths += [(Path(p), True) for p in _linked(folder)]
    for p, in_place in paths:
        try:
            size = p.stat().st_size
        except OSError:
            continue                    # a linked file that has gone away
        out.append(InstalledModel(p, display_name(p), size, catalog_entry_for(p), in_place))
    return out


def installed_path(entry: CatalogEntry, folder: Path | None = None) -> Path | None:
    p = (folder or models_dir()) / entry.file
    if not p.is_file():
        return None
    # an unpinned entry's size is approximate; its file was checked against the hub's sha256 when installed
    return p if not entry.pinned or p.stat().st_size == entry.size else None


def check_gguf(path: Path) -> None:
    """A regular file starting with the GGUF magic. Opened without blocking and checked with
    fstat first: open() on a FIFO named .gguf would wait for a writer for ever."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ModelFetchError(f"{path.name} is not a regular file (a folder, a pipe or a device?)")
            magic = os.read(fd, 4)
        finally:
            os.close(fd)
    except OSError as e:
        raise ModelFetchError(f"cannot read {path}: {e.strerror or e}") from e
    if magic != GGUF_MAGIC:
        raise ModelFetchError(f"{path.name} is not a GGUF model file")


def add_file(path: str | os.PathLike, copy: bool, folder: Path | None = None) -> Path:
    """Add a .gguf: copy it into the models folder (atomically), or remember it where it is."""
    src = Path(path).expanduser().resolve()
    check_gguf(src)
    folder = folder or models_dir()
    if not copy:
        linked = _linked(folder)
        if str(src) not in linked:
            atomic_write_json(folder / LINKED, linked + [str(src)])
        return src
    dest = folder / src.name
    if dest.exists():
        raise ModelFetchError(f"{dest.name} is already in the models folder")
    try:
        # the temp file (".<name>.<random>.tmp" beside it) is never taken for a model
        with open(src, "rb") as i, atomic_writer(dest) as o:
            shutil.copyfileobj(i, o, 1 << 20)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full(e, folder, src.stat().st_size, 0) from e
        raise ModelFetchError(f"could not copy {src.name}: {e.strerror or e}") from e
    return dest


def remove(path: str | os.PathLike, folder: Path | None = None) -> None:
    """Delete a model from the models folder, or forget a file used in place (left where it is)."""
    folder = folder or models_dir()
    p = Path(path)
    linked = _linked(folder)
    if str(p) in linked:
        atomic_write_json(folder / LINKED, [x for x in linked if x != str(p)])
        return
    if p.parent.resolve() != folder.resolve():
        raise ModelFetchError(f"{p} is not in the models folder; not deleting it")
    p.unlink(missing_ok=True)


@dataclass(frozen=True)
class VerifyResult:
    entry: CatalogEntry
    path: Path
    ok: bool
    detail: str


def verify_installed(folder: Path | None = None, progress=None) -> list[VerifyResult]:
    """sha256 of every installed catalog model against the catalog. Entries the catalog does not
    pin (their sha256 came from the hub at download time) have nothing here to check against and
    are left out."""
    folder = folder or models_dir()
    results = []
    for e in load_catalog():
        p = folder / e.file
        if e.sha256 is None or not p.is_file():
            continue
        report: Callable[[int, int], None] | None = None
        if progress:
            report = lambda d, t, e=e: progress(e, d, t)   # noqa: E731
        digest = sha256_file(p, report)
        ok = digest == e.sha256
        results.append(VerifyResult(e, p, ok, "ok" if ok else f"sha256 {digest[:16]}… expected {e.sha256[:16]}…"))
    return results


__all__ = ["InstalledModel", "VerifyResult", "add_file", "check_gguf", "installed_models", "installed_path",
           "remove", "verify_installed"]

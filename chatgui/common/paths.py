"""Where chatgui keeps its files.

platformdirs picks the usual per-user folders; CHATGUI_DATA_DIR and CHATGUI_CONFIG_DIR override
them (tests and the portable bundle use these). Folders are created when first asked for, and a
failure to create one is left for the first write to report with a clear message.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "chatgui"


def _ensure(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # read-only or unreachable: saving will raise a StoreError that says so
    return path


def _base(env_var: str, default: str) -> Path:
    override = os.environ.get(env_var, "").strip()
    return Path(override).expanduser() if override else Path(default)


def data_dir() -> Path:
    return _ensure(_base("CHATGUI_DATA_DIR", platformdirs.user_data_dir(APP_NAME, appauthor=False)))


def config_dir() -> Path:
    return _ensure(_base("CHATGUI_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME, appauthor=False)))


def chats_dir() -> Path:
    return _ensure(data_dir() / "chats")


def models_dir() -> Path:
    return _ensure(data_dir() / "models")


def settings_path() -> Path:
    return config_dir() / "settings.json"

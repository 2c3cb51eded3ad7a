"""Application settings in `settings.json` under the config folder.

Loading never fails: unknown keys are ignored, a value of the wrong type falls back to its
default (field by field), and a file that is not a JSON object is moved aside as `.corrupt`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from chatgui.common.types import SamplingSettings

from chatgui.common import paths
from .atomic import atomic_write_text
from .errors import StoreProblem, describe_os_error
from .files import FileTooLarge, NotRegularFile, move_aside, read_capped

DEVICES = ("auto", "cpu", "cuda")
LANGUAGES = ("system", "en", "zh_CN")
_MAX_SETTINGS_BYTES = 4 * 1024 * 1024


def _default_sampling() -> dict:
    return SamplingSettings().to_dict()


@dataclass
class AppSettings:
    sampling: dict = field(default_factory=_default_sampling)   # SamplingSettings.to_dict()
    system_prompt: str = ""
    model_path: str | None = None
    device: str = "auto"                 # one of DEVICES
    context_length: int | None = None    # None: the model's own
    language: str = "system"             # one of LANGUAGES
    theme: str = "system"
    random_seed: bool = True             # a fresh seed per reply, else sampling["seed"]
    show_token_view: bool = False
    window_geometry: str | None = None   # base64 of QWidget.saveGeometry()
    window_state: str | None = None      # base64 of QMainWindow.saveState() (docks, toolbars)
    splitter_state: str | None = None    # base64 of QSplitter.saveState()
    last_chat_id: str | None = None
    backend: dict = field(default_factory=dict)
    folders: dict = field(default_factory=dict)   # file dialog kind -> the folder last used
    tools: dict = field(default_factory=dict)     # tool calling: ui/tools/tool_settings.ToolSettings.to_dict()
    knowledge_model: str | None = None   # the embedding GGUF the knowledge folders are searched with (None: words only)

    def sampling_settings(self) -> SamplingSettings:
        return SamplingSettings.from_dict(self.sampling)

    def set_sampling(self, s: SamplingSettings) -> None:
        self.sampling = s.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> "AppSettings":
        """Build settings from untrusted data; any missing or ill-typed field gets its default."""
        out = cls()
        if not isinstance(d, dict):
            return out
        for f in fields(cls):
            if f.name in d and _fits(f.name, d[f.name], getattr(out, f.name)):
                setattr(out, f.name, d[f.name])
        if out.device not in DEVICES:
            out.device = "auto"
        if out.language not in LANGUAGES:
            out.language = "system"
        if out.context_length is not None and out.context_length <= 0:
            out.context_length = None
        out.sampling = _clean_sampling(out.sampling)
        return out


# Fields whose default is None but which hold a value of this type when set.
_OPTIONAL_TYPES = {"model_path": str, "context_length": int, "window_geometry": str,
                   "window_state": str, "splitter_state": str, "last_chat_id": str, "knowledge_model": str}


def _fits(name: str, value: object, default: object) -> bool:
    if name in _OPTIONAL_TYPES:
        return value is None or _is(value, _OPTIONAL_TYPES[name])
    return _is(value, type(default))


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _clean_sampling(d: dict) -> dict:
    """Field by field, as for the settings themselves: a bad value becomes the default."""
    out = _default_sampling()
    for key, default in list(out.items()):
        value = d.get(key)
        if key == "seed":
            ok = value is None or _is(value, int)
        elif isinstance(default, list):   # stop strings, DRY's sequence breakers
            ok = isinstance(value, list) and all(isinstance(s, str) for s in value)
        else:
            ok = _is(value, type(default))
        if key in d and ok:
            out[key] = float(value) if isinstance(default, float) and value is not None else value
    return out


def load_settings(path: Path | str | None = None, problems: list[StoreProblem] | None = None) -> AppSettings:
    """Read the settings, or return defaults. Trouble is appended to `problems` if given."""
    path = Path(path) if path is not None else paths.settings_path()

    def report(reason: str, action: str) -> None:
        if problems is not None:
            problems.append(StoreProblem(path, reason, action))

    try:
        raw = json.loads(read_capped(path, _MAX_SETTINGS_BYTES).decode("utf-8-sig"))
    except FileNotFoundError:
        return AppSettings()
    except (FileTooLarge, UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = str(err) if isinstance(err, FileTooLarge) else "it is not a valid settings file"
    except NotRegularFile as err:
        report(str(err), "defaults used")
        return AppSettings()
    except OSError as err:
        report(f"it cannot be read ({describe_os_error(err)})", "defaults used")
        return AppSettings()
    else:
        if isinstance(raw, dict):
            return AppSettings.from_dict(raw)
        reason = "it does not contain settings"
    try:
        moved = move_aside(path)
        report(reason, f"defaults used; the file was moved to {moved.name}")
    except OSError:
        report(reason, "defaults used")
    return AppSettings()


def save_settings(settings: AppSettings, path: Path | str | None = None) -> None:
    """Write the settings atomically; raises StoreError."""
    path = Path(path) if path is not None else paths.settings_path()
    atomic_write_text(path, json.dumps({"schema": 1, **settings.to_dict()}, ensure_ascii=False, indent=2))

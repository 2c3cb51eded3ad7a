"""The sampler registry: every sampling stage, in the order it is applied, with its settings.

One list, SAMPLER_STAGES, is the only place a sampler's settings are declared. Built from it:
SamplingSettings (`common/types.py`: one attribute per field, `to_dict`/`from_dict`, so also the
settings saved with each reply), the settings panel's Advanced fields (`ui/settings/panel.py`), the
sampling inspector's rows and tooltips (`ui/explain/inspector.py`), the fields the API server
accepts (`server/protocol.py`), and what the remote client sends (`remote/client.py`). The torch
code of each stage lives in `engine/sampling.py`, keyed by the stage's name. So adding a sampler is
its entry here, its function there and its test.

No Qt and no torch here. Labels and help texts are English; the UI translates them in the
"SettingsPanel" context (QT_TRANSLATE_NOOP below only marks them for pyside6-lupdate).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Mapping, Union

FieldValue = Union[float, int, tuple[str, ...]]


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:   # noqa: N802 (the name lupdate looks for)
    """Marks a string for translation (pyside6-lupdate finds calls by this name); no Qt here."""
    return text


class StageKind(str, enum.Enum):
    PENALTY = "penalty"   # lowers the logits of some tokens (repetition); the inspector's ↺ mark
    SHAPE = "shape"       # reshapes the whole distribution (temperature)
    FILTER = "filter"     # removes tokens; the inspector says which filter removed a token


@dataclass(frozen=True)
class SamplerField:
    """One setting of a stage: its name is the SamplingSettings attribute, the settings key and
    the API field."""
    name: str
    kind: type                     # float, int, or tuple (a list of strings)
    default: FieldValue
    label: str
    help: str
    lo: float = 0.0                # range, for numbers (the panel's and the API's)
    hi: float = 1.0
    step: float = 0.01             # the panel's spin box step
    decimals: int = 2
    off: FieldValue | None = None  # the value at which the stage does nothing (first field only)
    aliases: tuple[str, ...] = ()  # other names the API accepts and the remote client also sends
    openai: bool = False           # in OpenAI's own API: sent to every server, not only to those taking extras

    def check(self, value: Any) -> FieldValue:
        """value as this field holds it; ValueError (saying what is expected) if it is not one."""
        if self.kind is tuple:
            if isinstance(value, str) or not isinstance(value, (list, tuple)) \
                    or not all(isinstance(v, str) for v in value):
                raise ValueError("a list of strings")
            return tuple(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (self.kind is int and not (isinstance(value, int) or float(value).is_integer())):
            raise ValueError("an integer" if self.kind is int else "a number")
        if not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise ValueError(f"between {self.lo:g} and {self.hi:g}")
        return int(value) if self.kind is int else float(value)


@dataclass(frozen=True)
class SamplerStage:
    name: str                      # the key of its function in engine/sampling.py
    kind: StageKind
    label: str
    fields: tuple[SamplerField, ...]
    removed_reason: str = ""       # the inspector's word for a token this stage removed

    def is_on(self, values: Mapping[str, Any]) -> bool:
        """Whether the stage changes anything with these settings (by its first field)."""
        first = self.fields[0]
        return first.off is None or values.get(first.name, first.default) != first.off


SAMPLER_STAGES: tuple[SamplerStage, ...] = (
    SamplerStage("repeat_penalty", StageKind.PENALTY, QT_TRANSLATE_NOOP("SettingsPanel", "Repetition penalty"), (
        SamplerField("repeat_penalty", float, 1.1, QT_TRANSLATE_NOOP("SettingsPanel", "Repetition penalty"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "Above 1 makes repeating earlier tokens less likely"),
                     lo=0.01, hi=10.0, off=1.0, aliases=("repetition_penalty",)),
        SamplerField("repeat_last_n", int, 64, QT_TRANSLATE_NOOP("SettingsPanel", "Repetition window"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "How many recent tokens the repetition penalty looks at"),
                     lo=0, hi=1 << 20, step=16),
    )),
    # DRY ("don't repeat yourself", koboldcpp / text-generation-webui / llama.cpp): a token that
    # would extend a repeat of at least allowed_length tokens loses multiplier * base^(extra length).
    SamplerStage("dry", StageKind.PENALTY, QT_TRANSLATE_NOOP("SettingsPanel", "DRY"), (
        SamplerField("dry_multiplier", float, 0.0, QT_TRANSLATE_NOOP("SettingsPanel", "DRY multiplier"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "Penalizes continuing a sequence the text already has (0 "
                                                        "turns DRY off; 0.8 is usual)"),
                     lo=0.0, hi=5.0, step=0.05, off=0.0),
        SamplerField("dry_base", float, 1.75, QT_TRANSLATE_NOOP("SettingsPanel", "DRY base"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "How fast the penalty grows with each further repeated token"),
                     lo=1.0, hi=4.0, step=0.05),
        SamplerField("dry_allowed_length", int, 2, QT_TRANSLATE_NOOP("SettingsPanel", "DRY allowed length"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "Repeats up to this many tokens are not penalized"),
                     lo=1, hi=64, step=1),
        SamplerField("dry_sequence_breakers", tuple, ("\n", ":", "\"", "*"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "DRY sequence breakers"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "A repeat never reaches back past a token holding one of "
                                                        "these strings (a JSON list)")),
    )),
    SamplerStage("temperature", StageKind.SHAPE, QT_TRANSLATE_NOOP("SettingsPanel", "Temperature"), (
        SamplerField("temperature", float, 0.7, QT_TRANSLATE_NOOP("SettingsPanel", "Temperature"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "0 always picks the most likely token"),
                     lo=0.0, hi=5.0, step=0.05, openai=True),
    ), removed_reason=QT_TRANSLATE_NOOP("SettingsPanel", "greedy")),
    SamplerStage("top_k", StageKind.FILTER, QT_TRANSLATE_NOOP("SettingsPanel", "Top-k"), (
        SamplerField("top_k", int, 40, QT_TRANSLATE_NOOP("SettingsPanel", "Top-k"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "0 turns top-k off"),
                     lo=0, hi=(1 << 31) - 1, step=1, off=0),
    ), removed_reason=QT_TRANSLATE_NOOP("SettingsPanel", "top-k")),
    SamplerStage("top_p", StageKind.FILTER, QT_TRANSLATE_NOOP("SettingsPanel", "Top-p"), (
        SamplerField("top_p", float, 0.95, QT_TRANSLATE_NOOP("SettingsPanel", "Top-p"),
                     QT_TRANSLATE_NOOP("SettingsPanel",
                                       "Keep the most likely tokens that together reach this probability"),
                     off=1.0, openai=True),
    ), removed_reason=QT_TRANSLATE_NOOP("SettingsPanel", "top-p")),
    SamplerStage("min_p", StageKind.FILTER, QT_TRANSLATE_NOOP("SettingsPanel", "Min-p"), (
        SamplerField("min_p", float, 0.05, QT_TRANSLATE_NOOP("SettingsPanel", "Min-p"),
                     QT_TRANSLATE_NOOP("SettingsPanel",
                                       "Drop tokens less likely than this fraction of the most likely one"),
                     off=0.0),
    ), removed_reason=QT_TRANSLATE_NOOP("SettingsPanel", "min-p")),
    # XTC ("exclude top choices", text-generation-webui / llama.cpp): with the given probability
    # per token, every token at least `threshold` likely is removed except the least likely of them.
    SamplerStage("xtc", StageKind.FILTER, QT_TRANSLATE_NOOP("SettingsPanel", "XTC"), (
        SamplerField("xtc_probability", float, 0.0, QT_TRANSLATE_NOOP("SettingsPanel", "XTC probability"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "How often the most likely choices are left out, to vary "
                                                        "the wording (0 turns XTC off)"), off=0.0),
        SamplerField("xtc_threshold", float, 0.1, QT_TRANSLATE_NOOP("SettingsPanel", "XTC threshold"),
                     QT_TRANSLATE_NOOP("SettingsPanel", "Tokens at least this likely count as top choices (above "
                                                        "0.5 XTC does nothing)")),
    ), removed_reason=QT_TRANSLATE_NOOP("SettingsPanel", "XTC")),
)

SAMPLER_FIELDS: tuple[SamplerField, ...] = tuple(f for stage in SAMPLER_STAGES for f in stage.fields)
FIELDS_BY_NAME: dict[str, SamplerField] = {f.name: f for f in SAMPLER_FIELDS}
STAGES_BY_NAME: dict[str, SamplerStage] = {s.name: s for s in SAMPLER_STAGES}
SAMPLER_DEFAULTS: dict[str, FieldValue] = {f.name: f.default for f in SAMPLER_FIELDS}
# Fields outside OpenAI's API, under every name sent (a strict server names one when it refuses it).
EXTRA_API_FIELDS: tuple[str, ...] = tuple(n for f in SAMPLER_FIELDS if not f.openai for n in (f.name, *f.aliases))


def stages_on(values: Mapping[str, Any]) -> list[SamplerStage]:
    return [stage for stage in SAMPLER_STAGES if stage.is_on(values)]

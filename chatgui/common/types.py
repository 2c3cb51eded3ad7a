"""Plain data passed between the engine and its callers (the GUI worker, the API server).

Nothing here imports torch, so the UI can use these types before the model is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .records import Alternative, FinishReason
from .samplers import FIELDS_BY_NAME, SAMPLER_DEFAULTS, SAMPLER_FIELDS


class SamplingSettings:
    """How a reply is sampled: one attribute per field of the sampler registry
    (`common/samplers.py`: temperature, top_k, top_p, min_p, repeat_penalty, dry_*, xtc_*, ...),
    plus the reply's length, seed, stop strings and JSON mode. Immutable; `with_` makes a copy.

    The sampler fields are not written out here so that a new sampler is declared once, in the
    registry; keyword arguments are checked against it (an unknown name is a TypeError, as for a
    dataclass), values are taken as given (callers that read untrusted data use `from_dict`)."""
    max_new_tokens: int
    seed: int | None                  # None: a fresh random seed per reply (reported back)
    stop: tuple[str, ...]             # extra stop strings
    json_reply: bool                  # the reply must parse as JSON (constrained decoding)

    def __init__(self, *, max_new_tokens: int = 512, seed: int | None = None, stop: Iterable[str] = (),
                 json_reply: bool = False, **samplers: Any) -> None:
        unknown = set(samplers) - set(SAMPLER_DEFAULTS)
        if unknown:
            raise TypeError(f"SamplingSettings has no field {', '.join(sorted(unknown))}")
        values = {**SAMPLER_DEFAULTS, **samplers}
        for name, value in values.items():
            if FIELDS_BY_NAME[name].kind is tuple:
                values[name] = tuple(value)
        # Each field is a plain attribute too (read per token, so a plain lookup matters).
        for name, value in (*values.items(), ("max_new_tokens", max_new_tokens), ("seed", seed),
                            ("stop", tuple(stop)), ("json_reply", json_reply), ("_samplers", values)):
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called for a name that is not a field: say so plainly. (To a type checker it also
        # declares the registry's fields, which it cannot see.)
        raise AttributeError(f"SamplingSettings has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("SamplingSettings is immutable: use with_()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SamplingSettings) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in self.to_dict().items()))

    def __repr__(self) -> str:
        return f"SamplingSettings({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __copy__(self) -> "SamplingSettings":
        return self

    def __deepcopy__(self, memo: dict) -> "SamplingSettings":
        return self

    def __reduce__(self):
        return (_restore, (self.to_dict(),))

    def sampler_values(self) -> dict[str, Any]:
        """The registry's fields and their values, in the registry's order."""
        return dict(self._samplers)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in self._samplers.items()}
        d.update(max_new_tokens=self.max_new_tokens, seed=self.seed, stop=list(self.stop), json_reply=self.json_reply)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "SamplingSettings":
        """Settings from a stored or received dict: unknown keys are ignored, a sampler field that
        is missing or not valid takes its default (older replies were saved before DRY and XTC)."""
        d = d or {}
        kw: dict[str, Any] = {}
        for f in SAMPLER_FIELDS:
            if f.name in d:
                try:
                    kw[f.name] = f.check(d[f.name])
                except ValueError:
                    pass
        for name in ("max_new_tokens", "seed", "json_reply"):
            if name in d:
                kw[name] = d[name]
        if "stop" in d:
            kw["stop"] = tuple(str(s) for s in (d["stop"] or ()))
        return cls(**kw)

    def with_(self, **kw: Any) -> "SamplingSettings":
        values = {**self._samplers, "max_new_tokens": self.max_new_tokens, "seed": self.seed, "stop": self.stop,
                  "json_reply": self.json_reply}
        return SamplingSettings(**{**values, **kw})


def _restore(d: dict) -> SamplingSettings:
    return SamplingSettings(**d)


PRESETS: dict[str, SamplingSettings] = {
    "Precise": SamplingSettings(temperature=0.2, top_k=20, top_p=0.9, min_p=0.1, repeat_penalty=1.1),
    "Balanced": SamplingSettings(),
    "Creative": SamplingSettings(temperature=1.0, top_k=100, top_p=0.98, min_p=0.02, repeat_penalty=1.05),
}


@dataclass(frozen=True)
class TokenEvent:
    """One generated token.

    `prob` and `alternatives` are the model's own next-token distribution (softmax of the raw
    logits); `sampled_prob` and `sampled_alternatives` are the distribution the token was actually
    drawn from, after repetition penalty, temperature, top-k, top-p and min-p.
    `text` is the new piece of UTF-8-safe text; it may be "" while a multi-byte character is
    still incomplete.
    """
    index: int
    token_id: int
    text: str
    prob: float
    alternatives: tuple[Alternative, ...]
    sampled_prob: float
    sampled_alternatives: tuple[Alternative, ...]


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    dropped_messages: int = 0          # oldest turns left out to fit the context
    seed: int = 0
    time_to_first_token: float = 0.0   # seconds, prefill included
    tokens_per_second: float = 0.0     # decode speed
    finish_reason: FinishReason | None = None   # None until the reply ends
    extra: dict = field(default_factory=dict)

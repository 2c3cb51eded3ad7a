"""Plain data passed between the engine and its callers (the GUI worker, the API server).

Nothing here imports torch, so the UI can use these types before the model is loaded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7          # 0 means greedy
    top_k: int = 40                   # 0 disables
    top_p: float = 0.95               # 1.0 disables
    min_p: float = 0.05               # 0 disables
    repeat_penalty: float = 1.1       # 1.0 disables
    repeat_last_n: int = 64           # window of recent tokens the penalty looks at
    max_new_tokens: int = 512
    seed: int | None = None           # None: a fresh random seed per reply (reported back)
    stop: tuple[str, ...] = ()        # extra stop strings
    json_reply: bool = False          # the reply must parse as JSON (constrained decoding)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SamplingSettings":
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in (d or {}).items() if k in known}
        if "stop" in kw:
            kw["stop"] = tuple(str(s) for s in (kw["stop"] or ()))
        return cls(**kw)

    def with_(self, **kw) -> "SamplingSettings":
        return replace(self, **kw)


PRESETS: dict[str, SamplingSettings] = {
    "Precise": SamplingSettings(temperature=0.2, top_k=20, top_p=0.9, min_p=0.1, repeat_penalty=1.1),
    "Balanced": SamplingSettings(),
    "Creative": SamplingSettings(temperature=1.0, top_k=100, top_p=0.98, min_p=0.02, repeat_penalty=1.05),
}


@dataclass(frozen=True)
class Alternative:
    token_id: int
    text: str
    prob: float

    # Let an Alternative unpack like the (token_id, text, prob) tuple the API promises.
    def __iter__(self):
        return iter((self.token_id, self.text, self.prob))


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
    finish_reason: str = ""            # "stop", "length", "stop_string", "cancelled", "error" (extra["error"])
    extra: dict = field(default_factory=dict)

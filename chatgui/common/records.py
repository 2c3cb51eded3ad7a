"""Typed records that cross layers: what a backend is and can do, a reply's metadata, a token.

Each record converts to and from the plain dict it is stored as (`to_dict` / `from_dict`), so
the stored form stays JSON-friendly while code reads attributes instead of string keys.
`from_dict` accepts what an older version wrote: unknown keys are kept in `extra` (ReplyMeta)
or ignored, missing ones take their defaults.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import NamedTuple


class ValueEnum(str, enum.Enum):
    """A str enum that prints as its value (as enum.StrEnum, which Python 3.10 lacks); stored and
    sent as that string."""
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class BackendKind(ValueEnum):
    LOCAL = "local"      # chatgui's own engine, a GGUF file on this computer
    OPENAI = "openai"    # an OpenAI-compatible server


class FinishReason(ValueEnum):
    STOP = "stop"                      # the model ended its reply
    LENGTH = "length"                  # max new tokens or the context was reached
    STOP_STRING = "stop_string"        # one of the stop strings appeared
    CANCELLED = "cancelled"            # the user stopped it
    ERROR = "error"                    # it broke off (a remote server failed, the JSON grammar engine gave up); the text so far is kept
    CONTENT_FILTER = "content_filter"  # a server withheld the rest (OpenAI's reason)
    TOOL_CALLS = "tool_calls"          # the reply ended by calling tools (their results come next)

    @classmethod
    def from_server(cls, value: object) -> "FinishReason":
        """A server's finish_reason: stop, length and content_filter as they are; anything else
        (tool_calls, a server's own words) ends the reply like stop."""
        return cls(value) if value in ("length", "content_filter") else cls.STOP


@dataclass(frozen=True)
class Capabilities:
    """What a backend offers beyond plain text, so the UI asks instead of guessing its kind."""
    token_probabilities: bool = True   # each token's probability and alternatives (token view)
    next_token_logits: bool = True     # the distribution at any position (sampling inspector)
    reply_prefix: bool = True          # a reply can start with given token ids (branch from a token)
    replay: bool = True                # same file + settings + seed give the same reply
    exact_token_counts: bool = True    # prompt/reply sizes are counted, not estimated
    can_be_served: bool = True         # the Serve switch can offer it to other programs
    batched_candidates: bool = True    # several answers to one prompt decoded together
    json_constraints: bool = True      # replies held to a JSON schema token by token (the server's response_format)
    prepared_prompts: bool = True      # a chat's context can be computed ahead, before the next message (prepare)


LOCAL_CAPABILITIES = Capabilities()
REMOTE_CAPABILITIES = Capabilities(token_probabilities=False, next_token_logits=False, reply_prefix=False,
                                   replay=False, exact_token_counts=False, can_be_served=False,
                                   batched_candidates=False, json_constraints=False, prepared_prompts=False)


@dataclass(frozen=True)
class ModelInfo:
    """The loaded model, as the UI shows it. For a server, `path` is its URL and `device` "remote"."""
    name: str
    path: str
    device: str
    context_length: int
    kind: BackendKind = BackendKind.LOCAL
    capabilities: Capabilities = LOCAL_CAPABILITIES
    backend: dict | None = None        # a server's public settings (never a key)
    warnings: tuple[str, ...] = ()     # what the user should know (e.g. tokens may differ from llama.cpp)

    @property
    def is_local(self) -> bool:
        return self.kind is BackendKind.LOCAL


class Alternative(NamedTuple):
    """A token the model could have put at a position, and its probability: the one type for
    TokenEvent's alternatives and a TokenRecord's. Records read back in bulk hold plain
    (id, text, prob) tuples of the same shape (store/token_pack.py: a named tuple would cost
    several times as much there), so code reading records unpacks or indexes them."""
    token_id: int
    text: str
    prob: float


class TokenRecord(NamedTuple):
    """One generated token as kept for the token view: the model's own probability and its
    alternatives, and those of the distribution it was drawn from (after the sampling settings).

    A named tuple, not a dataclass: a 500-turn chat holds 200,000 of them and the store builds
    a reply's records in bulk, where a tuple is four times quicker to make. Alternatives are
    (id, text, p) tuples, most likely first. `prob` / `sampled_prob` are None when not recorded
    (replies from before the after-sampling values were kept have no `sampled_prob`).
    `forced`: the token was put there by "Continue with this token", not drawn.

    Stored as {"id", "t", "p", "alts", "sp", "salts"} (alternatives as [id, text, p]; "forced"
    only when true); `to_dict` / `from_dict` convert at the store's edge."""
    id: int
    text: str
    prob: float | None
    alts: tuple[Alternative, ...] = ()
    sampled_prob: float | None = None
    sampled_alts: tuple[Alternative, ...] = ()
    forced: bool = False

    @property
    def has_sampled(self) -> bool:
        """Whether the after-sampling distribution was recorded."""
        return self.sampled_prob is not None

    @property
    def shown_prob(self) -> float:
        """The probability the token was drawn with; the model's own for older replies; 0 if neither."""
        p = self.sampled_prob if self.sampled_prob is not None else self.prob
        return p if p is not None else 0.0

    @classmethod
    def from_event(cls, event, keep: int = 5) -> "TokenRecord":
        return cls(event.token_id, event.text, round(event.prob, 6),
                   tuple(Alternative(a.token_id, a.text, round(a.prob, 6)) for a in event.alternatives[:keep]),
                   round(event.sampled_prob, 6),
                   tuple(Alternative(a.token_id, a.text, round(a.prob, 6)) for a in event.sampled_alternatives[:keep]))

    def to_dict(self) -> dict:
        d = {"id": self.id, "t": self.text}
        if self.prob is not None:
            d["p"] = self.prob
        d["alts"] = [list(a) for a in self.alts]
        if self.sampled_prob is not None:
            d["sp"] = self.sampled_prob
        if self.sampled_prob is not None or self.sampled_alts:
            d["salts"] = [list(a) for a in self.sampled_alts]
        if self.forced:
            d["forced"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenRecord":
        """A record from its stored dict; raises ValueError/TypeError if it is not one (see
        records_from_dicts). Unknown keys are ignored, missing ones take their defaults."""
        if not isinstance(d, dict):
            raise TypeError("a token record is a dict")
        return cls(_int(d.get("id", -1)), d["t"] if isinstance(d.get("t"), str) else "", _prob(d.get("p")),
                   _alternatives(d.get("alts")), _prob(d.get("sp")), _alternatives(d.get("salts")),
                   d.get("forced") is True)


def records_from_dicts(items) -> list[TokenRecord]:
    """Typed records from stored dicts (records already typed pass through); what is not a
    record (a damaged or foreign file) is left out."""
    if not isinstance(items, (list, tuple)):
        return []
    out = []
    for item in items:
        if type(item) is TokenRecord:
            out.append(item)
            continue
        try:
            out.append(TokenRecord.from_dict(item))
        except (TypeError, ValueError, OverflowError):
            continue
    return out


def records_to_dicts(records) -> list[dict]:
    return [r.to_dict() if isinstance(r, TokenRecord) else r for r in records]


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("a token id is a number")
    return int(value)


def _prob(value) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _alternatives(items) -> tuple[Alternative, ...]:
    if not isinstance(items, (list, tuple)):
        return ()
    out = []
    for a in items:
        if isinstance(a, (list, tuple)) and len(a) == 3 and isinstance(a[1], str):
            try:
                p = _prob(a[2])
                if p is not None:
                    out.append(Alternative(_int(a[0]), a[1], p))
            except (TypeError, ValueError, OverflowError):
                pass
    return tuple(out)


@dataclass
class ReplyMeta:
    """What is recorded with an assistant reply: how it was made (settings, seed, model file),
    how it went (tokens, speed, why it ended), and where it came from (branch, replay, compare)."""
    sampling: dict | None = None           # SamplingSettings.to_dict()
    seed: int | None = None
    model: str | None = None               # display name
    model_path: str | None = None          # None for a server
    model_sha256: str | None = None
    device: str | None = None              # "cpu", "cuda", "remote"
    context_length: int | None = None
    prompt_tokens: int | None = None
    tokens: int | None = None
    dropped_messages: int | None = None
    finish_reason: FinishReason | None = None
    time_to_first_token: float | None = None
    tokens_per_second: float | None = None
    usage_reported: bool | None = None     # a server reported its token counts
    backend: dict | None = None            # a server's public settings
    token_data: list | None = None         # [TokenRecord, ...]
    partial: bool | None = None            # the reply was cut short (stopped, failed, closed)
    error: str | None = None
    branch: dict | None = None             # continued from a chosen token
    reply_prefix_ids: list | None = None
    replay_of: str | None = None           # the message id this reply replays
    replay_identical: bool | None = None
    compare_preset: str | None = None
    extra: dict = field(default_factory=dict)   # keys this version does not know, kept as they are

    @property
    def is_remote(self) -> bool:
        return self.backend is not None or self.device == "remote"

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d = {k: v for k, v in d.items() if v is not None}
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ReplyMeta":
        d = dict(d or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        if d.get("finish_reason") in FinishReason.__members__.values():
            d["finish_reason"] = FinishReason(d["finish_reason"])
        elif "finish_reason" in d:   # not one this version knows: kept as it was, in extra
            known -= {"finish_reason"}
        return cls(**{k: d.pop(k) for k in list(d) if k in known}, extra=d)

    def update(self, **changes) -> "ReplyMeta":
        for key, value in changes.items():
            if key in self.__dataclass_fields__ and key != "extra":
                setattr(self, key, value)
            else:
                self.extra[key] = value
        return self


ATTACHMENT_MODES = ("whole", "retrieved", "failed")


@dataclass
class Attachment:
    """A file attached to a user message, as the chat saves it (in the message's meta under
    "attachments"): what its chip shows, and its text, so that the chat stays complete when the
    file moves. `mode` is how it went into the prompt: "whole", "retrieved" (the passages that
    best matched the question; `passages` says how many) or "failed" (`error` says why)."""
    name: str
    path: str = ""
    kind: str = ""
    tokens: int = 0
    pages: int | None = None
    mode: str = "whole"
    passages: int = 0
    error: str | None = None
    text: str = ""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: object) -> "Attachment | None":
        """None for what is not an attachment; wrong-typed fields take their defaults."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            return None
        pages = d.get("pages")
        error = d.get("error")
        mode = d.get("mode")
        return cls(name=d["name"], path=_str(d.get("path")), kind=_str(d.get("kind")),
                   tokens=max(0, _count(d.get("tokens"))),
                   pages=pages if isinstance(pages, int) and not isinstance(pages, bool) else None,
                   mode=mode if mode in ATTACHMENT_MODES else "whole",
                   passages=max(0, _count(d.get("passages"))),
                   error=error if isinstance(error, str) else None, text=_str(d.get("text")))


def attachments_from_meta(meta: dict) -> list[Attachment]:
    """A user message's attachments (meta "attachments"); what is not one is left out."""
    items = meta.get("attachments") if isinstance(meta, dict) else None
    found = [Attachment.from_dict(item) for item in items] if isinstance(items, list) else []
    return [a for a in found if a is not None]


def _count(value) -> int:
    ok = isinstance(value, int) or isinstance(value, float) and value == value and abs(value) < 1e15
    return int(value) if ok and not isinstance(value, bool) else 0


def _str(value) -> str:
    return value if isinstance(value, str) else ""

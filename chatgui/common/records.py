"""Typed records that cross layers: what a backend is and can do, a reply's metadata, a token.

Each record converts to and from the plain dict it is stored as (`to_dict` / `from_dict`), so
the stored form stays JSON-friendly while code reads attributes instead of string keys.
`from_dict` accepts what an older version wrote: unknown keys are kept in `extra` (ReplyMeta)
or ignored, missing ones take their defaults.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import NamedTuple, TypeVar

from .tools import ToolCall, ToolResult


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
    TOOL_LIMIT = "tool_limit"          # the window's tool loop reached its rounds; calls were left unrun

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


@dataclass(frozen=True)
class BranchPoint:
    """Where a reply was branched from: the reply `from_id`, its token `index` (from 0), and the
    token put there instead (`token_id`). Stored as {"from", "index", "token_id"}."""
    from_id: str
    index: int
    token_id: int

    def to_dict(self) -> dict:
        return {"from": self.from_id, "index": self.index, "token_id": self.token_id}

    @classmethod
    def from_dict(cls, d: object) -> "BranchPoint | None":
        if not isinstance(d, dict) or not isinstance(d.get("from"), str) or not _is_int(d.get("index")) \
                or not _is_int(d.get("token_id")):
            return None
        return cls(d["from"], d["index"], d["token_id"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each plain field of ReplyMeta must hold when read back; a value of another type (a file
# edited by hand, another program's export) is kept in `extra` under its key, so it is written back
# unchanged but never read as the field.
_REPLY_FIELD_CHECKS = {
    "sampling": lambda v: isinstance(v, dict), "seed": _is_int, "model": lambda v: isinstance(v, str),
    "model_path": lambda v: isinstance(v, str), "model_sha256": lambda v: isinstance(v, str),
    "device": lambda v: isinstance(v, str), "context_length": _is_int, "prompt_tokens": _is_int,
    "tokens": _is_int, "dropped_messages": _is_int, "time_to_first_token": _is_number,
    "tokens_per_second": _is_number, "usage_reported": lambda v: isinstance(v, bool),
    "backend": lambda v: isinstance(v, dict), "token_data": lambda v: isinstance(v, list),
    "partial": lambda v: isinstance(v, bool), "error": lambda v: isinstance(v, str),
    "reply_prefix_ids": lambda v: isinstance(v, list) and all(_is_int(t) for t in v),
    "replay_of": lambda v: isinstance(v, str), "replay_identical": lambda v: isinstance(v, bool),
    "compare_preset": lambda v: isinstance(v, str), "tool_rounds": _is_int,
    "sources": lambda v: isinstance(v, list),
}


_Meta = TypeVar("_Meta")


def shallow_copy(meta: _Meta) -> _Meta:
    """A message meta's shallow copy (its lists shared, its `extra` dict its own), without
    __init__'s work: a save snapshots every message's meta."""
    new = object.__new__(type(meta))
    state = meta.__dict__.copy()
    if state["extra"]:
        state["extra"] = dict(state["extra"])
    new.__dict__ = state
    return new


@dataclass
class ReplyMeta:
    """What is recorded with an assistant reply: how it was made (settings, seed, model file),
    how it went (tokens, speed, why it ended), where it came from (branch, replay, compare), the
    tools it called and the documents it was given. Stored as a dict (`to_dict`, `from_dict`)
    under the field names; tool calls, results and the branch point as their own dicts."""
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
    branch: BranchPoint | None = None      # continued from a chosen token
    reply_prefix_ids: list[int] | None = None
    replay_of: str | None = None           # the message id this reply replays
    replay_identical: bool | None = None
    compare_preset: str | None = None
    tool_calls: list[ToolCall] | None = None      # in the order the model made them, every round
    tool_results: list[ToolResult] | None = None  # one per call that ran or was refused
    tool_rounds: int | None = None
    sources: list[dict] | None = None      # the documents' passages it was given (documents.Source.to_dict())
    extra: dict = field(default_factory=dict)   # keys this version does not know, kept as they are

    @property
    def is_remote(self) -> bool:
        return self.backend is not None or self.device == "remote"

    def to_dict(self) -> dict:
        """The stored form (token records stay TokenRecords: the store packs them itself)."""
        d = {k: v for k, v in self.__dict__.items() if v is not None and k != "extra"}   # fields, in order
        if self.branch is not None:
            d["branch"] = self.branch.to_dict()
        if self.tool_calls is not None:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_results is not None:
            d["tool_results"] = [r.to_dict() for r in self.tool_results]
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ReplyMeta":
        """A reply's meta from its stored form. A known key whose value is not of its field's type
        stays in `extra` as it was (so it is written back, never misread); so do unknown keys.
        (One pass over the stored keys: a long chat's replies are all read when it opens.)"""
        extra = dict(d) if isinstance(d, dict) else {}
        meta = object.__new__(cls)
        meta.__dict__.update(_REPLY_DEFAULTS)
        for key in [k for k in extra if k in _REPLY_DEFAULTS]:
            value = extra[key]
            if value is None:
                del extra[key]
                continue
            ok = _REPLY_FIELD_CHECKS.get(key)
            if ok is not None:
                if ok(value):
                    meta.__dict__[key] = extra.pop(key)
            elif key == "finish_reason":
                if isinstance(value, str) and value in _FINISH_VALUES:
                    meta.finish_reason = FinishReason(extra.pop(key))
            elif key == "branch":
                branch = BranchPoint.from_dict(value)
                if branch is not None:
                    meta.branch = branch
                    del extra[key]
            else:   # tool_calls, tool_results
                records = _records(value, ToolCall.from_dict if key == "tool_calls" else ToolResult.from_dict)
                if records is not None:
                    meta.__dict__[key] = records
                    del extra[key]
        meta.extra = extra
        return meta

    def copy(self) -> "ReplyMeta":
        """A shallow copy (its lists shared), quick: a save snapshots every reply's meta."""
        return shallow_copy(self)

    def merge(self, other: "ReplyMeta") -> "ReplyMeta":
        """Take every field `other` has (not None), and its extra keys; returns self."""
        for name in _REPLY_FIELDS:
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, value)
        self.extra.update(other.extra)
        return self


_REPLY_FIELDS = tuple(f.name for f in fields(ReplyMeta) if f.name != "extra")
_REPLY_DEFAULTS = dict.fromkeys(_REPLY_FIELDS)   # every field's default is None
_FINISH_VALUES = frozenset(r.value for r in FinishReason)


def _records(items, make) -> list | None:
    """Typed records from a stored list (entries that do not parse are left out: a damaged record
    must not keep the chat from showing); None when it is not a list."""
    if not isinstance(items, list):
        return None
    out = []
    for d in items:
        try:
            out.append(make(d))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


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

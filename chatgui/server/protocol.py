"""The OpenAI chat-completions wire format: validating requests, shaping responses and errors.

Plain functions on dicts, no HTTP here. Requests are checked field by field so that a client
gets a 4xx naming the field, never a 500. A field that would change nothing here is refused
with a 400 naming it (never silently ignored), except purely informational ones (user, ...).
"""
from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass

from chatgui.common.prompt import PromptFormatError, PromptMessage, Role, checked_unicode
from chatgui.common.records import FinishReason
from chatgui.common.samplers import SAMPLER_FIELDS, SamplerField
from chatgui.common.types import SamplingSettings

from .tools import parse_tools

MAX_STOP_STRINGS = 16
MAX_MESSAGES = 2048         # as OpenAI: each costs the runner time (100,000 empty ones took 24 s)
# OpenAI's finish reasons for ours (a cancelled reply is not answered). "error": the reply broke off
# (the JSON grammar engine gave up): what came is not the JSON asked for.
FINISH_REASONS = {FinishReason.STOP: "stop", FinishReason.STOP_STRING: "stop", FinishReason.LENGTH: "length",
                  FinishReason.ERROR: "error", FinishReason.TOOL_CALLS: "tool_calls"}


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    """A validated request of either endpoint: chat (messages) or text completion (prompt)."""
    messages: list[PromptMessage] | None
    settings: SamplingSettings
    stream: bool
    include_usage: bool
    n: int = 1
    top_logprobs: int | None = None      # None: no logprobs; else how many alternatives per token
    prompt: str | None = None            # /v1/completions
    echo: bool = False
    response_format: dict | None = None  # {"type": "json_object"} or {"type": "json_schema", ...}
    tools: list | None = None            # [common.tools.ToolSpec] (server/tools.py), or None
    tool_choice: object = "none"         # "auto", "none", "required", or a tool's name
    parallel_tool_calls: bool = True


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value" if param else None)


def _number(body: dict, name: str, lo: float, hi: float, integer: bool = False):
    """body[name] if present: a number (an int when integer) within [lo, hi]; None if absent."""
    value = body.get(name)
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value != value:
        raise _bad(f"'{name}' must be {'an integer' if integer else 'a number'}.", name)
    if not lo <= value <= hi:
        raise _bad(f"'{name}' must be between {lo} and {hi}, not {value}.", name)
    return value


def _unicode(text: str, where: str, param: str) -> str:
    """text, if it is valid Unicode (common/prompt.py checked_unicode), else a 400 naming param."""
    try:
        return checked_unicode(text, where)
    except PromptFormatError as e:
        raise _bad(str(e), param) from None


def parse_messages(raw) -> list[PromptMessage]:
    if not isinstance(raw, list) or not raw:
        raise _bad("'messages' must be a non-empty list of {role, content} objects.", "messages")
    if len(raw) > MAX_MESSAGES:
        raise _bad(f"'messages' may hold at most {MAX_MESSAGES:,} messages, not {len(raw):,}: leave out the "
                   "oldest turns.", "messages")
    try:
        return [PromptMessage.from_wire(m, f"messages[{i}]") for i, m in enumerate(raw)]
    except PromptFormatError as e:      # it names the message and what is wrong with it
        raise _bad(str(e), "messages") from None


def parse_stop(raw) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("'stop' must be a string or a list of strings.", "stop")
    if len(stops) > MAX_STOP_STRINGS:
        raise _bad(f"'stop' may hold at most {MAX_STOP_STRINGS} strings.", "stop")
    return tuple(_unicode(s, "'stop'", "stop") for s in stops if s)


# Fields a client may send that change nothing here, so accepting them hides nothing.
INFORMATIONAL = {"model", "user", "metadata", "store", "service_tier"}
# The sampler registry's fields (common/samplers.py), under their names and aliases
# (llama.cpp's repeat_penalty, vLLM's repetition_penalty, text-generation-webui's dry_*, xtc_*).
SAMPLER_API_NAMES = {name for f in SAMPLER_FIELDS for name in (f.name, *f.aliases)}
SAMPLING_FIELDS = SAMPLER_API_NAMES | {"stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "seed",
                                       "stop", "logprobs", "presence_penalty", "frequency_penalty", "logit_bias"}
CHAT_FIELDS = INFORMATIONAL | SAMPLING_FIELDS | {"messages", "top_logprobs", "response_format", "tools", "tool_choice",
                                                 "parallel_tool_calls"}
TEXT_FIELDS = INFORMATIONAL | SAMPLING_FIELDS | {"prompt", "echo", "suffix", "best_of", "response_format"}
# Fields accepted only at the value that means "off": anything else would be silently ignored.
NEUTRAL = {"presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0), "logit_bias": ({},),
           "suffix": ("",), "best_of": (1,), "store": (False,)}
MAX_N = 8
MAX_TOP_LOGPROBS = 20


def _check_fields(body: dict, known: set[str]) -> None:
    for name, value in body.items():
        if name not in known:
            raise _bad(f"The field {name!r} is not supported by this server.", name)
        if name in NEUTRAL and value is not None and value not in NEUTRAL[name]:
            raise _bad(f"'{name}' is not supported by this server (only {NEUTRAL[name][0]!r} or leaving it out).",
                       name)


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"'{name}' must be true or false.", name)
    return bool(value)


def _sampling(body: dict, context_length: int) -> tuple[SamplingSettings, dict]:
    """The sampling settings and the streaming/choice options common to both endpoints."""
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or not set(options) <= {"include_usage"}:
        raise _bad("'stream_options' must be an object with at most 'include_usage'.", "stream_options")
    max_tokens = _number(body, "max_completion_tokens", 1, 1 << 31, integer=True)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", 1, 1 << 31, integer=True)
    kw = {f.name: _sampler_field(body, f) for f in SAMPLER_FIELDS}
    kw["seed"] = _number(body, "seed", -(1 << 63), (1 << 64) - 1, integer=True)
    kw["max_new_tokens"] = min(max_tokens, context_length) if max_tokens else None
    settings = SamplingSettings(**{k: v for k, v in kw.items() if v is not None}, stop=parse_stop(body.get("stop")))
    stream = _flag(body, "stream")
    common = {"stream": stream, "include_usage": stream and _flag(options, "include_usage"),
              "n": _number(body, "n", 1, MAX_N, integer=True) or 1}
    return settings, common


def _sampler_field(body: dict, f: SamplerField):
    """A sampler setting from the body under its name or an alias; None if absent."""
    for name in (f.name, *f.aliases):
        if body.get(name) is not None:
            try:
                return f.check(body[name])
            except ValueError as e:
                raise _bad(f"'{name}' must be {e}, not {body[name]!r}.", name) from None
    return None


def parse_chat_request(body, context_length: int) -> ChatRequest:
    """Validate a /v1/chat/completions body (the model name is checked by the caller)."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    _check_fields(body, CHAT_FIELDS)
    messages = parse_messages(body.get("messages"))
    settings, common = _sampling(body, context_length)
    top = _number(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, integer=True)
    if top is not None and not body.get("logprobs"):
        raise _bad("'top_logprobs' needs 'logprobs': true.", "top_logprobs")
    top_logprobs = (top or 0) if _flag(body, "logprobs") else None
    tools, tool_choice, parallel = parse_tools(body)                  # server/tools.py
    if tools and tool_choice != "none" and body.get("response_format") not in (None, {"type": "text"}):
        raise _bad("'tools' cannot be combined with 'response_format' here.", "response_format")
    return ChatRequest(messages, settings, top_logprobs=top_logprobs,
                       response_format=parse_response_format(body.get("response_format")), tools=tools,
                       tool_choice=tool_choice, parallel_tool_calls=parallel, **common)


def parse_text_request(body, context_length: int) -> ChatRequest:
    """Validate a /v1/completions body: one prompt string (or a list holding one)."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    _check_fields(body, TEXT_FIELDS)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise _bad("'prompt' must be a non-empty string (one prompt per request).", "prompt")
    _unicode(prompt, "'prompt'", "prompt")
    settings, common = _sampling(body, context_length)
    # The legacy API: logprobs is the number of alternatives (0-5 at OpenAI; up to 20 here).
    top_logprobs = _number(body, "logprobs", 0, MAX_TOP_LOGPROBS, integer=True)
    echo = _flag(body, "echo")
    if echo and common["stream"]:
        raise _bad("'echo' cannot be combined with 'stream' here.", "echo")
    return ChatRequest(None, settings, prompt=prompt, echo=echo, top_logprobs=top_logprobs,
                       response_format=parse_response_format(body.get("response_format")), **common)


def check_prompt_size(req: ChatRequest, max_bytes: int | None, context_length: int) -> None:
    """A 400 before queuing for text that cannot fit the context however it tokenizes (more bytes
    than context_length x the longest token): the runner would spend a long time tokenizing it
    (8 MB: ~2 minutes) to say so. Old turns may be long: they are dropped to fit; what every
    prompt keeps is the system message at the start and the last message."""
    if not max_bytes:
        return
    if req.prompt is not None:
        kept, param, what = req.prompt, "prompt", "The prompt"
    else:
        first = req.messages[0].content if len(req.messages) > 1 and req.messages[0].role is Role.SYSTEM else ""
        kept, param, what = first + req.messages[-1].content, "messages", "The last message (with the system one)"
    size = len(kept.encode("utf-8"))
    if size > max_bytes:
        raise ApiError(400, f"{what} is too long for this model's context of {context_length:,} tokens: "
                            f"{size:,} bytes, more than any {context_length:,} tokens can hold. Shorten it.",
                       param=param, code="context_length_exceeded")


def parse_response_format(raw) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in ("text", "json_object", "json_schema"):
        raise _bad("'response_format' must be {\"type\": \"text\" | \"json_object\" | \"json_schema\"}.",
                   "response_format")
    if raw["type"] == "text":
        return None
    if raw["type"] == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _bad("'response_format.json_schema' must be an object with a 'schema' object.", "response_format")
    return raw


# -- responses ------------------------------------------------------------------------------
def new_completion_id(chat: bool = True) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)


def usage_of(stats: dict) -> dict:
    p, c = stats["prompt_tokens"], stats["completion_tokens"]
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def logprob_value(prob: float) -> float:
    """log(prob), with -9999.0 for a probability of 0 (JSON has no -inf; OpenAI uses -9999)."""
    return math.log(prob) if prob > 0 else -9999.0


def chat_logprob(tok: dict) -> dict:
    """One token's entry of a chat choice's logprobs.content. tok: {"token", "bytes", "prob",
    "top": [(token, bytes, prob), ...]} as the worker builds it."""
    return {"token": tok["token"], "logprob": logprob_value(tok["prob"]), "bytes": tok["bytes"],
            "top_logprobs": [{"token": t, "logprob": logprob_value(p), "bytes": b} for t, b, p in tok["top"]]}


def text_logprobs(toks: list[dict], offset: int = 0) -> dict:
    """A /v1/completions choice's logprobs (the legacy shape: parallel lists)."""
    out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for tok in toks:
        out["tokens"].append(tok["token"])
        out["token_logprobs"].append(None if tok["prob"] is None else logprob_value(tok["prob"]))
        out["top_logprobs"].append(None if tok["top"] is None else
                                   {t: logprob_value(p) for t, _, p in tok["top"]})
        out["text_offset"].append(offset)
        offset += len(tok["token"])
    return out


def completion_body(cid: str, model: str, choices: list[dict], stats: dict, chat: bool = True) -> dict:
    """choices: [{"text", "finish_reason", "logprobs": [token dicts] or None}]."""
    out = []
    for i, c in enumerate(choices):
        if chat:
            lp = None if c["logprobs"] is None else {"content": [chat_logprob(t) for t in c["logprobs"]],
                                                       "refusal": None}
            message = {"role": "assistant", "content": c["text"]}
            if c.get("tool_calls"):
                message = {"role": "assistant", "content": c["text"] or None, "tool_calls": c["tool_calls"]}
            out.append({"index": i, "message": message, "logprobs": lp,
                        "finish_reason": FINISH_REASONS.get(c["finish_reason"], "stop")})
        else:
            lp = None if c["logprobs"] is None else text_logprobs(c["logprobs"], c.get("offset", 0))
            out.append({"index": i, "text": c["text"], "logprobs": lp,
                        "finish_reason": FINISH_REASONS.get(c["finish_reason"], "stop")})
    return {"id": cid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": model, "choices": out, "usage": usage_of(stats)}


def chunk_body(cid: str, model: str, created: int, delta: dict | None = None, finish_reason=None,
               usage: dict | None = None, include_usage: bool = False, index: int = 0,
               logprobs: list[dict] | None = None, chat: bool = True) -> dict:
    """One chat.completion.chunk (or text_completion chunk). With include_usage, every chunk has
    "usage": null except the last, which has the counts and no choices (as OpenAI sends it)."""
    if usage:
        choices = []
    elif chat:
        lp = None if logprobs is None else {"content": [chat_logprob(t) for t in logprobs], "refusal": None}
        choices = [{"index": index, "delta": delta or {}, "logprobs": lp,
                    "finish_reason": finish_reason and FINISH_REASONS.get(finish_reason, "stop")}]
    else:
        choices = [{"index": index, "text": (delta or {}).get("content", ""),
                    "logprobs": None if logprobs is None else text_logprobs(logprobs),
                    "finish_reason": finish_reason and FINISH_REASONS.get(finish_reason, "stop")}]
    body = {"id": cid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
            "model": model, "choices": choices}
    if include_usage:
        body["usage"] = usage
    return body


def sse(data: dict | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()

"""The OpenAI chat-completions wire format: validating requests, shaping responses and errors.

Plain functions on dicts, no HTTP here. Requests are checked field by field so that a client
gets a 4xx naming the field, never a 500. Unknown fields are ignored (clients send many:
user, logprobs, presence_penalty, ...), as OpenAI-compatible servers commonly do.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from chatgui.common.types import SamplingSettings

MAX_STOP_STRINGS = 16
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
FINISH_REASONS = {"stop": "stop", "stop_string": "stop", "length": "length"}


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
    messages: list[dict]
    settings: SamplingSettings
    stream: bool
    include_usage: bool


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


def _content_text(content, where: str) -> str:
    """Message content: a string, or a list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{where}: only text content is supported.", "messages")
            texts.append(part["text"])
        return "".join(texts)
    raise _bad(f"{where}: 'content' must be a string or a list of text parts.", "messages")


def parse_messages(raw) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise _bad("'messages' must be a non-empty list of {role, content} objects.", "messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(f"{where} must be an object with 'role' and 'content'.", "messages")
        role = m.get("role")
        if role not in ROLES:
            raise _bad(f"{where}: role {role!r} is not supported (use system, user or assistant).", "messages")
        out.append({"role": ROLES[role], "content": _content_text(m.get("content"), where)})
    return out


def parse_stop(raw) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("'stop' must be a string or a list of strings.", "stop")
    if len(stops) > MAX_STOP_STRINGS:
        raise _bad(f"'stop' may hold at most {MAX_STOP_STRINGS} strings.", "stop")
    return tuple(s for s in stops if s)


def parse_chat_request(body, context_length: int) -> ChatRequest:
    """Validate a /v1/chat/completions body (the model name is checked by the caller)."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    messages = parse_messages(body.get("messages"))
    _number(body, "n", 1, 1, integer=True)       # one choice per request is all we serve
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise _bad("'stream' must be true or false.", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("'stream_options' must be an object.", "stream_options")
    max_tokens = _number(body, "max_completion_tokens", 1, 1 << 31, integer=True)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", 1, 1 << 31, integer=True)
    kw = {
        "temperature": _number(body, "temperature", 0, 2),
        "top_p": _number(body, "top_p", 0, 1),
        "top_k": _number(body, "top_k", 0, 1 << 31, integer=True),
        "min_p": _number(body, "min_p", 0, 1),
        # llama.cpp's name, then vLLM's
        "repeat_penalty": _number(body, "repeat_penalty", 0.01, 10) or _number(body, "repetition_penalty", 0.01, 10),
        "repeat_last_n": _number(body, "repeat_last_n", 0, context_length, integer=True),
        "seed": _number(body, "seed", -(1 << 63), (1 << 64) - 1, integer=True),
        "max_new_tokens": min(max_tokens, context_length) if max_tokens else None,
    }
    settings = SamplingSettings(**{k: v for k, v in kw.items() if v is not None},
                                stop=parse_stop(body.get("stop")))
    return ChatRequest(messages, settings, bool(stream), bool(options.get("include_usage")))


# -- responses ------------------------------------------------------------------------------
def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_of(stats: dict) -> dict:
    p, c = stats["prompt_tokens"], stats["completion_tokens"]
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def finish_reason_of(stats: dict) -> str:
    return FINISH_REASONS.get(stats["finish_reason"], "stop")


def completion_body(cid: str, model: str, text: str, stats: dict) -> dict:
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": None, "finish_reason": finish_reason_of(stats)}],
            "usage": usage_of(stats)}


def chunk_body(cid: str, model: str, created: int, delta: dict | None = None, finish_reason=None,
               usage: dict | None = None, include_usage: bool = False) -> dict:
    """One chat.completion.chunk. With include_usage, every chunk has "usage": null except the
    last, which has the counts and no choices (as OpenAI sends it)."""
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [] if usage else [{"index": 0, "delta": delta or {}, "logprobs": None,
                                          "finish_reason": finish_reason}]}
    if include_usage:
        body["usage"] = usage
    return body


def sse(data: dict | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()

"""RemoteModel: any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama, hosted APIs,
`chatgui-serve`) behind the same interface as the engine's ChatModel.

What differs from a local ChatModel, by nature of the protocol:
- TokenEvents carry text only: `token_id` is -1, `prob` and `sampled_prob` are NaN, and
  `alternatives` are empty. One event per streamed chunk (usually one token).
- `context_length` is None unless the caller knows it; `count_tokens` is an estimate
  (about 4 characters a token); old turns are never dropped here (the server refuses a chat
  that is too long, as RemotePromptTooLongError).
- `stats.prompt_tokens` / `generated_tokens` come from the server's usage report, which is
  asked for with `stream_options.include_usage`; servers that do not send one leave
  prompt_tokens 0 and generated_tokens the number of chunks.
- `stats.seed` is the seed that was asked for, or 0 when none was (the server chose).
"""
from __future__ import annotations

import math
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from chatgui.common.io import url_without_credentials
from chatgui.common.prompt import PromptMessage
from chatgui.common.records import REMOTE_CAPABILITIES, BackendKind, ModelInfo
from chatgui.common.samplers import SAMPLER_STAGES
from chatgui.common.types import SamplingSettings

from .errors import (RemoteConnectionError, RemoteError, RemoteNotFoundError, RemoteProtocolError,
                     RemoteRequestError, RemoteTimeoutError, error_for_status, scrub)
from .secrets import public_backend_settings

CONNECT_TIMEOUT = 10.0
# Seconds of silence before giving up. Generous: a CPU server may think for a long time before
# the first token of a long prompt. Cancelling does not wait for it.
SERVER_SILENCE_TIMEOUT = 120.0
CHARS_PER_TOKEN = 4


class _Secret:
    """Holds the API key so that no repr, log line or traceback variable dump shows it."""
    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or None

    def reveal(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "'***'" if self._value else "None"

    __str__ = __repr__


def normalize_base_url(url: str) -> str:
    """Accept what users type: "localhost:8000", "http://host:8000", ".../v1/". A bare host gets
    "/v1" (every OpenAI-compatible server mounts the API there); a path is kept as given."""
    url = (url or "").strip()
    if not url:
        raise RemoteRequestError("No server address was given.")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteRequestError(f"Not a server address: {url_without_credentials(url)}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))




class RemoteModel:
    """An OpenAI-compatible server behind the ChatBackend interface (chatgui.common.backend)."""
    device = "remote"     # what the UI shows where a local model shows "cpu" / "cuda"
    sha256 = None         # a remote model has no file to hash
    # TokenEvent.prob is NaN: no token view, no token_data; the protocol sends text, not tokens
    capabilities = REMOTE_CAPABILITIES

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, *,
                 context_length: int | None = None, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = SERVER_SILENCE_TIMEOUT, send_extra_sampling: bool = True):
        self.base_url = normalize_base_url(base_url)
        self.model = model or None
        self.context_length = context_length
        self.send_extra_sampling = send_extra_sampling
        self.timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=connect_timeout,
                                     pool=connect_timeout)
        self._api_key = _Secret(api_key)

    def __repr__(self) -> str:
        return (f"RemoteModel(base_url={url_without_credentials(self.base_url)!r}, model={self.model!r}, "
                f"api_key={'set' if self._api_key.reveal() else 'none'})")

    # -- what the UI shows ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model or "(not chosen yet)"

    @property
    def path(self) -> str:
        """Where the model lives, for display and the message meta (never holds a secret)."""
        return url_without_credentials(self.base_url)

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.name, path=self.path, device=self.device,
                         context_length=self.context_length or 0, kind=BackendKind.OPENAI,
                         capabilities=self.capabilities,
                         backend=public_backend_settings({"kind": BackendKind.OPENAI.value, "base_url": self.path,
                                                          "model": self.name}))

    def count_tokens(self, messages: Sequence[PromptMessage]) -> int:
        """An estimate: the protocol has no tokenizer endpoint that every server offers."""
        chars = sum(len(m.content) + 8 for m in messages)
        return math.ceil(chars / CHARS_PER_TOKEN)

    # -- HTTP plumbing ----------------------------------------------------------------------
    def headers(self, stream: bool = False) -> dict[str, str]:
        h = {"Accept": "text/event-stream" if stream else "application/json"}
        key = self._api_key.reveal()
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def url(self, endpoint: str) -> str:
        return self.base_url + "/" + endpoint.lstrip("/")

    def translate(self, exc: Exception) -> RemoteError:
        """A RemoteError for a network failure, with the key scrubbed from its text."""
        if isinstance(exc, RemoteError):
            return exc
        where = url_without_credentials(self.base_url)
        said = scrub(str(exc), self._api_key.reveal()) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return RemoteTimeoutError(f"The server at {where} did not answer in time ({said}).")
        if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol)):
            return RemoteConnectionError(f"Cannot reach the server at {where}: {said}. Is it running?")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return RemoteConnectionError(f"The connection to {where} broke: {said}.")
        if isinstance(exc, httpx.HTTPError):
            return RemoteConnectionError(f"Talking to {where} failed: {said}.")
        return RemoteError(f"Talking to {where} failed: {type(exc).__name__}: {said}")

    def status_error(self, response: httpx.Response, body: bytes) -> RemoteError:
        return error_for_status(response.status_code, body, api_key=self._api_key.reveal(),
                                url=url_without_credentials(self.base_url), retry_after=response.headers.get("retry-after"))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)

    # -- the API ----------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """Model ids from GET /v1/models, in the server's order."""
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=True) as client:
                r = client.get(self.url("models"), headers=self.headers())
                body = r.read()
        except httpx.HTTPError as e:
            raise self.translate(e) from None
        if r.status_code >= 400:
            raise self.status_error(r, body)
        try:
            data = r.json()["data"]
            return [str(m["id"]) for m in data]
        except (ValueError, KeyError, TypeError) as e:
            raise RemoteProtocolError(f"The server's model list is not in the OpenAI format ({type(e).__name__}). "
                                      "Is the base URL right?") from None

    def chat_payload(self, messages: Sequence[PromptMessage], settings: SamplingSettings, stream: bool = True,
                     tools: list | None = None, tool_choice="auto", parallel: bool = True) -> dict:
        """The JSON body of a chat completion request for these messages and settings (and the
        tools the reply may call: common.tools.ToolSpec; tool_choice as tool_calls.py takes it)."""
        from .tools import wire_tool_choice

        body = {
            "messages": [m.to_wire() for m in messages],
            "stream": stream,
            "max_tokens": settings.max_new_tokens,
        }
        values = settings.sampler_values()
        for stage in SAMPLER_STAGES:
            # OpenAI's own fields always; the others (not in OpenAI's API, but vLLM, llama.cpp's
            # server, text-generation-webui and chatgui-serve read them) only while their stage is
            # on, under every name (vLLM says repetition_penalty, llama.cpp repeat_penalty).
            for f in stage.fields:
                if f.openai or (self.send_extra_sampling and stage.is_on(values)):
                    value = values[f.name]
                    for name in (f.name, *f.aliases):
                        body[name] = list(value) if isinstance(value, tuple) else value
        if self.model:
            body["model"] = self.model
        if stream:
            body["stream_options"] = {"include_usage": True}
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.stop:
            body["stop"] = list(settings.stop)
        if settings.json_reply:
            body["response_format"] = {"type": "json_object"}
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
            body["tool_choice"] = wire_tool_choice(tool_choice)
            if not parallel:
                body["parallel_tool_calls"] = False
        return body

    def generate(self, messages: Sequence[PromptMessage], settings: SamplingSettings | None = None, cancel=None,
                 reply_prefix_ids=(), tools: list | None = None, tool_choice="auto", parallel: bool = True):
        """Start a streamed reply. Blocks until the server accepts the request (raising a
        RemoteError if it refuses), then returns a RemoteGeneration to iterate (its `tool_calls`
        are the calls the server sent, when tools were given)."""
        from .generation import RemoteGeneration
        if reply_prefix_ids:
            raise RemoteRequestError("Continuing a reply from a chosen token needs the local model: the OpenAI "
                                     "chat protocol cannot start a reply with given tokens.")
        if not self.model:
            # Some servers (Ollama, OpenAI) insist on a model id: take the first one offered.
            models = self.list_models()
            if not models:
                raise RemoteNotFoundError("The server offers no models.")
            self.model = models[0]
        return RemoteGeneration(self, messages, settings or SamplingSettings(), cancel,
                                tools=tools, tool_choice=tool_choice, parallel=parallel)

    def reply_with_tools(self, messages: Sequence[PromptMessage], tools: list, settings: SamplingSettings,
                         tool_choice="auto", cancel=None, on_text=None, parallel: bool = True, on_start=None):
        """One round of the tool loop (engine/tool_loop.py) on the server: (the reply's text, its
        calls, each checked against its tool, the RemoteGeneration). The server renders the tools
        in its model's format and parses the calls; earlier calls and results go as the API has them.
        on_start(generation): once the server has accepted the request."""
        gen = self.generate(messages, settings, cancel, tools=tools, tool_choice=tool_choice, parallel=parallel)
        if on_start is not None:
            on_start(gen)
        for event in gen:
            if on_text is not None and event.text:
                on_text(event.text)
        return gen.text, gen.tool_calls, gen

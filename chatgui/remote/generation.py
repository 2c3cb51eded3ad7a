"""RemoteGeneration: one streamed reply from an OpenAI-compatible server, iterated like the
engine's Generation (TokenEvents out, `.text` and `.stats` filled in as it goes).

The HTTP stream runs on its own thread in its own asyncio loop. Why not a plain blocking read:
a socket read blocked in one thread cannot be interrupted from another, so a cancel during a
long silence (a CPU server thinking over a long prompt) would wait for the read timeout. An
asyncio task can be cancelled at once, which closes the connection, which tells the server to
stop. The caller's thread blocks on a queue; `cancel` (a runner.CancelFlag) wakes it the
moment it is set, by putting a "cancelled" item there and cancelling the task.
"""
from __future__ import annotations

import asyncio
import json
import math
import queue
import threading
import time
from typing import Iterator, Sequence

import httpx

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import FinishReason
from chatgui.common.runner import CancelFlag
from chatgui.common.samplers import EXTRA_API_FIELDS
from chatgui.common.types import GenerationStats, SamplingSettings, TokenEvent

from .errors import RemoteError, RemoteProtocolError, RemoteServerError, server_message_of
from .sse import SSEError, sse_events
from .tools import CallParts

MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024
EXTRA_FIELDS = EXTRA_API_FIELDS     # the sampler fields outside OpenAI's API (common/samplers.py)


class RemoteGeneration:
    """Iterate for TokenEvents (token_id -1, prob NaN, no alternatives: the protocol has none).

    On a failure mid-reply, iteration raises a RemoteError; `text` keeps what had arrived (also
    on the error as `partial_text`), `error` holds it and `stats.finish_reason` is "error".
    """

    def __init__(self, model, messages: Sequence[PromptMessage], settings: SamplingSettings,
                 cancel: CancelFlag | None = None, tools: list | None = None, tool_choice="auto", parallel: bool = True):
        if cancel is not None and not isinstance(cancel, CancelFlag):
            # A plain Event cannot wake the waiting thread: it would only be noticed at the next chunk.
            raise TypeError("cancel must be a chatgui.common.runner.CancelFlag")
        self.model, self.settings, self.cancel = model, settings, cancel
        self.tools, self.tool_choice, self.parallel = list(tools or ()), tool_choice, parallel
        self._call_parts = CallParts()
        self.text = ""
        self.token_ids = ()    # the protocol sends text, not token ids
        self.error: RemoteError | None = None
        self.stats = GenerationStats(seed=settings.seed if settings.seed is not None else 0)
        self.stats.extra["usage_reported"] = False
        self._items: queue.Queue = queue.Queue()
        self._hang_up_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._t0 = time.perf_counter()
        self._forget_cancel = lambda: None
        if cancel is not None:
            self._forget_cancel = cancel.on_set(self._on_cancel)
        self._thread = threading.Thread(target=self._network_thread, args=(list(messages),),
                                        name="chatgui-remote-stream", daemon=True)
        self._thread.start()
        # Wait until the server accepts the request, so that a refusal (bad key, unknown model,
        # chat too long) raises here, as the engine's PromptTooLongError does.
        first = self._next_item()
        if first is None:
            self.stats.finish_reason = FinishReason.CANCELLED
            self._it: Iterator[TokenEvent] = iter(())
            return
        if first[0] == "error":
            self.error = first[1]
            raise first[1]
        self._it = self._events()

    @property
    def tool_calls(self) -> list:
        """The calls the server sent (common.tools.ToolCall, each checked against its tool; one
        that is not usable says why in `error`). Complete once iteration has ended."""
        return self._call_parts.calls(self.tools)

    @property
    def dropped_messages(self) -> int:
        return 0     # the server sees the whole chat; it refuses one that is too long

    def __iter__(self) -> Iterator[TokenEvent]:
        return self._it

    def __next__(self) -> TokenEvent:
        return next(self._it)

    def close(self, timeout: float = 2.0) -> None:
        """Hang up (if still streaming) and wait for the network thread to end."""
        self._hang_up()
        self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the caller's side ----------------------------------------------------------------
    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _on_cancel(self) -> None:
        """On the thread that cancels: hang up and wake the reader."""
        self._hang_up()
        self._items.put(("cancelled", None, time.perf_counter()))

    def _next_item(self):
        """The next item from the network thread, or None as soon as the caller cancels."""
        item = self._items.get()
        if item[0] == "cancelled" or self._cancelled():
            self._hang_up()
            return None
        return item

    def _events(self) -> Iterator[TokenEvent]:
        st = self.stats
        finish, done, chunks, index = None, False, 0, 0
        t_first = t_last = None
        try:
            while True:
                item = self._next_item()
                if item is None:
                    st.finish_reason = FinishReason.CANCELLED
                    break
                kind, value, at = item
                if kind == "error":
                    self._fail(value)
                if kind == "end":
                    break
                event, data = value
                if data.strip() == "[DONE]":
                    done = True
                    break
                text, reason = self._read_chunk(event, data)
                if text and t_first is None:
                    t_first = at
                    st.time_to_first_token = at - self._t0
                if t_first is not None:
                    t_last = at       # (the chunk closing the reply too: a server may send what held back there)
                if text:
                    chunks += 1
                    self.text += text
                    if not st.extra["usage_reported"]:
                        st.generated_tokens = chunks
                    yield TokenEvent(index, -1, text, math.nan, (), math.nan, ())
                    index += 1
                finish = reason or finish
            if st.finish_reason is not FinishReason.CANCELLED:
                if not done and finish is None:
                    self._fail(RemoteProtocolError("The server closed the stream before the reply was finished."))
                st.finish_reason = FinishReason.from_server(finish)
                if st.finish_reason is FinishReason.STOP and finish not in (None, "stop"):
                    st.extra["server_finish_reason"] = finish     # e.g. tool_calls: kept, not lost
            if t_first is not None and t_last > t_first and st.generated_tokens > 1:
                st.tokens_per_second = (st.generated_tokens - 1) / (t_last - t_first)
        finally:
            self._hang_up()

    def _fail(self, error: RemoteError):
        error.partial_text = self.text
        self.error = error
        self.stats.finish_reason = FinishReason.ERROR
        self._hang_up()
        raise error

    def _read_chunk(self, event: str, data: str) -> tuple[str, str | None]:
        """(new text, finish reason) of one stream chunk, or of a whole non-streamed reply."""
        try:
            chunk = json.loads(data)
        except ValueError:
            self._fail(RemoteProtocolError(f"The server sent a malformed stream (not JSON: {data[:60]!r})."))
        if not isinstance(chunk, dict):
            self._fail(RemoteProtocolError("The server sent a malformed stream (a chunk is not an object)."))
        if event == "error" or chunk.get("error"):
            said = server_message_of(data.encode(), self.model._api_key.reveal()) or "no details"
            self._fail(RemoteServerError(f"The server reported an error during the reply: {said}"))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._take_usage(usage)
        choices = chunk.get("choices") or []
        text, reason = "", None
        try:
            for choice in choices:
                if choice.get("index", 0) != 0:
                    continue           # we ask for one choice; ignore any others
                part = choice.get("delta") if "delta" in choice else choice.get("message")
                content = (part or {}).get("content")
                if content is not None and not isinstance(content, str):
                    raise TypeError("content is not text")
                text += content or ""
                if (part or {}).get("tool_calls"):
                    self._call_parts.take(part["tool_calls"])
                reason = choice.get("finish_reason") or reason
        except (AttributeError, TypeError) as e:
            self._fail(RemoteProtocolError(f"The server sent a malformed stream ({e})."))
        return text, reason

    def _take_usage(self, usage: dict) -> None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            self.stats.prompt_tokens = prompt
            self.stats.generated_tokens = completion
            self.stats.extra["usage_reported"] = True

    def _hang_up(self) -> None:
        self._forget_cancel()
        self._hang_up_requested.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not task.done():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass    # that loop has already finished

    # -- the network thread ---------------------------------------------------------------
    def _put(self, kind: str, value=None) -> None:
        self._items.put((kind, value, time.perf_counter()))

    def _network_thread(self, messages: Sequence[PromptMessage]) -> None:
        try:
            asyncio.run(self._stream(messages))
        except BaseException as e:  # noqa: BLE001 - whatever happens must reach the caller
            self._put("error", self.model.translate(e))

    async def _stream(self, messages: Sequence[PromptMessage]) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self._hang_up_requested.is_set():
            return
        m = self.model
        try:
            async with m.async_client() as client:
                for attempt in (1, 2):
                    payload = m.chat_payload(messages, self.settings, stream=True, tools=self.tools or None,
                                             tool_choice=self.tool_choice, parallel=self.parallel)
                    async with client.stream("POST", m.url("chat/completions"), json=payload,
                                             headers=m.headers(stream=True)) as r:
                        if r.status_code >= 400:
                            body = await _read_capped(r, MAX_ERROR_BODY)
                            if attempt == 1 and _refuses_extra_fields(r.status_code, body, payload):
                                m.send_extra_sampling = False   # a strict server (OpenAI's own): try plain
                                continue
                            raise m.status_error(r, body)
                        self._put("open")
                        if "text/event-stream" not in r.headers.get("content-type", "text/event-stream"):
                            # The server ignored stream=true and sent the whole reply at once.
                            body = await _read_capped(r, MAX_JSON_BODY)
                            self._put("data", ("message", body.decode("utf-8", "replace")))
                        else:
                            async for event, data in sse_events(r.aiter_lines()):
                                self._put("data", (event, data))
                        self._put("end")
                        return
        except asyncio.CancelledError:
            # The caller hung up: leaving the `async with` closed the connection. (The reader may
            # still wait if the hang-up came from close() on another thread: wake it.)
            self._put("cancelled")
        except SSEError as e:
            self._put("error", RemoteProtocolError(f"The server sent a malformed stream ({e})."))
        except (RemoteError, httpx.HTTPError, OSError) as e:
            self._put("error", m.translate(e))


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) >= limit:
            break
    return bytes(buf[:limit])


def _refuses_extra_fields(status: int, body: bytes, payload: dict) -> bool:
    """A 400 that names one of the non-OpenAI sampling fields we sent (OpenAI's own API says
    "Unrecognized request argument supplied: top_k")."""
    if status not in (400, 422):
        return False
    said = body.decode("utf-8", "replace")
    return any(f in payload and f in said for f in EXTRA_FIELDS)

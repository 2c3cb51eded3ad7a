"""Pieces of scripted OpenAI-compatible servers shared by the remote-backend tests."""
from __future__ import annotations

import asyncio
import json
import threading

from starlette.responses import StreamingResponse


def sse_chunk(content=None, finish=None, usage=None, model: str = "m") -> str:
    """One chat.completion.chunk server-sent event (a usage-only chunk when usage is given)."""
    body = {"id": "x", "object": "chat.completion.chunk", "model": model,
            "choices": [] if usage else [{"index": 0, "delta": {} if content is None else {"content": content},
                                          "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


def sse_stream(events, hung_up: threading.Event, delay: float = 0.0, then_wait: float = 0.0) -> StreamingResponse:
    """An SSE response sending these raw events, then optionally staying silent; sets hung_up
    when the client goes away (or the stream ends)."""
    async def body():
        try:
            for e in events:
                yield e.encode()
                await asyncio.sleep(delay)
            await asyncio.sleep(then_wait)
        finally:
            hung_up.set()
    return StreamingResponse(body(), media_type="text/event-stream")

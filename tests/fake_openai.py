"""Pieces of scripted OpenAI-compatible servers shared by the remote-backend tests."""
from __future__ import annotations

import asyncio
import json
import threading

from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from chatgui.server import BackgroundServer


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


class FakeServer:
    """A scripted OpenAI-compatible server on loopback. Every /v1/... request is recorded in
    `requests` ({"path", "headers", "json"}) and answered by `handler(record)`. /v1/models lists
    `models` (or fails with models_status 401) when `own_models` is set, or handler is None or
    returns None for it; otherwise handler answers it too (tests of the model list itself)."""

    def __init__(self, models=("fake",), own_models: bool = False):
        self.own_models = own_models
        self.handler = None
        self.models = list(models)
        self.models_status = 200
        self.requests: list[dict] = []
        self.hung_up = threading.Event()     # set when a streaming client goes away
        app = Starlette(routes=[Route("/v1/{path:path}", self._dispatch, methods=["GET", "POST"])])
        self.http = BackgroundServer(app, "127.0.0.1", 0)
        self.url = self.http.base + "/v1"

    def reset(self) -> "FakeServer":
        self.handler, self.models_status, self.requests = None, 200, []
        self.hung_up.clear()
        return self

    async def _dispatch(self, request):
        raw = await request.body()
        record = {"path": request.url.path, "headers": dict(request.headers),
                  "json": json.loads(raw) if raw else None}
        self.requests.append(record)
        is_models = record["path"] == "/v1/models"
        answer = None if self.handler is None or (is_models and self.own_models) else self.handler(record)
        if answer is None and is_models:
            if self.models_status == 401:
                return JSONResponse({"error": {"message": "Invalid API key", "code": "invalid_api_key"}}, 401)
            return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})
        return answer

    def stream(self, *events: str, then_wait: float = 0.0, delay: float = 0.0) -> StreamingResponse:
        """An SSE response sending these raw events, then optionally staying silent."""
        return sse_stream(events, self.hung_up, delay, then_wait)

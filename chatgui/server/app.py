"""The Starlette app: OpenAI's /v1/models and /v1/chat/completions over one GenerationWorker."""
from __future__ import annotations

import asyncio
import json
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chatgui.common.records import FinishReason
from chatgui.engine.errors import PromptTooLongError, TemplateError

from .auth import BearerAuth
from .guard import AccessGuard
from . import structured
from . import tools as tool_api
from .protocol import (ApiError, check_prompt_size, chunk_body, completion_body, new_completion_id,
                       parse_chat_request, parse_text_request, sse, usage_of)
from .worker import GenerationWorker, QueuedRequest, QueueFull, ShuttingDown

MAX_BODY_BYTES = 8 * 1024 * 1024


class ServedModel:
    """What the app needs to know about the model besides the worker that runs it."""

    def __init__(self, model, served_name: str | None = None):
        """model: a ServableBackend (chatgui.common.backend). Its id is the file's name unless
        served_name is given; its display name is accepted too."""
        self.id = served_name or model.file_name
        self.aliases = {self.id, model.name}
        self.context_length = int(model.context_length or 4096)
        self.capabilities = model.capabilities
        self.created = int(time.time())
        # Text beyond this can never fit, whatever it says (engine: ChatModel.longest_token_bytes;
        # a backend without it is not bounded here).
        longest = getattr(model, "longest_token_bytes", None)
        self.max_prompt_bytes = self.context_length * longest if longest else None


def build_app(worker: GenerationWorker, served: ServedModel, api_key: str | None = None, *,
              bound_host: str = "127.0.0.1", allow_hosts=(), allow_origins=()):
    """The ASGI app: the API behind the access checks of guard.py and the key check of auth.py."""
    return AccessGuard(BearerAuth(build_api(worker, served), api_key), bound_host=bound_host,
                       allow_hosts=allow_hosts, allow_origins=allow_origins, credential_headers=BearerAuth.HEADERS)


def build_api(worker: GenerationWorker, served: ServedModel) -> Starlette:
    def model_card() -> dict:
        return {"id": served.id, "object": "model", "created": served.created, "owned_by": "chatgui"}

    async def list_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def get_model(request: Request) -> Response:
        if request.path_params["model"] not in served.aliases:
            raise _unknown_model(request.path_params["model"], served.id)
        return JSONResponse(model_card())

    async def chat_completions(request: Request) -> Response:
        return await complete(request, chat=True)

    async def text_completions(request: Request) -> Response:
        return await complete(request, chat=False)

    async def complete(request: Request, chat: bool) -> Response:
        body = await _read_json(request)
        if isinstance(body, dict) and body.get("model") not in (None, "", *served.aliases):
            raise _unknown_model(body.get("model"), served.id)
        req = (parse_chat_request if chat else parse_text_request)(body, served.context_length)
        check_prompt_size(req, served.max_prompt_bytes, served.context_length)
        if req.top_logprobs is not None and not served.capabilities.token_probabilities:
            raise ApiError(400, "This model cannot give logprobs.", param="logprobs", code="unsupported_value")
        constraint = None
        if req.response_format:      # compiling a schema can take a while: not on the event loop
            constraint = await asyncio.get_running_loop().run_in_executor(
                None, structured.constraint_for, worker.model, req.response_format)
        elif chat and req.tools and req.tool_choice != "none":
            constraint = await asyncio.get_running_loop().run_in_executor(
                None, tool_api.constraint_for, worker.model, req.tools, req.tool_choice, req.parallel_tool_calls)
        job = QueuedRequest(req.messages, req.settings, asyncio.get_running_loop(), prompt=req.prompt, n=req.n,
                  top_logprobs=req.top_logprobs, constraint=constraint,
                  echo_logprobs=req.echo and req.top_logprobs is not None,
                  tools=req.tools if chat and req.tool_choice != "none" else None)
        try:
            worker.submit(job)
        except QueueFull:
            raise ApiError(503, f"The server is busy: {worker.max_waiting} requests are already waiting. "
                                "Try again shortly.", type="server_error", code="queue_full",
                           headers={"Retry-After": "2"}) from None
        except ShuttingDown:
            raise _shutting_down() from None
        watch = ClientWatch(request, job)
        try:
            # Headers wait until the prompt is accepted, so that a prompt that is too long gets a
            # proper 400 rather than an error in the middle of a 200 stream.
            kind, value = await job.output.get()
            if kind == "gone":
                return Response(status_code=499)          # the client left while waiting
            if kind == "error":
                raise _as_api_error(value, "messages" if chat else "prompt")
            cid = new_completion_id(chat)
            if req.stream:
                watch.stop()      # from here StreamingResponse watches for the client leaving
                return StreamingResponse(_stream(job, cid, served.id, req, chat), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            return await _collect(job, cid, served.id, req, chat)
        finally:
            watch.stop()

    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                                     code=code).body(), status_code=exc.status_code, headers=exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return JSONResponse(ApiError(500, f"Internal error: {type(exc).__name__}", type="server_error").body(),
                            status_code=500)

    routes = [Route("/v1/models", list_models, methods=["GET"]),
              Route("/v1/models/{model:path}", get_model, methods=["GET"]),
              Route("/v1/chat/completions", chat_completions, methods=["POST"]),
              Route("/v1/completions", text_completions, methods=["POST"]),
              Route("/health", lambda request: JSONResponse({"status": "ok"}), methods=["GET"])]
    return Starlette(routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error,
                                                        Exception: internal_error})


async def _read_json(request: Request):
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB.",
                           code="request_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"The request body is not valid JSON: {e}", code="invalid_json") from None


class ClientWatch:
    """Cancels a job the moment its client disconnects, whatever the job is doing: waits on the
    ASGI receive channel, which (the body being read) next says http.disconnect."""

    def __init__(self, request: Request, job: QueuedRequest):
        self._task = asyncio.ensure_future(self._watch(request.receive, job))

    @staticmethod
    async def _watch(receive, job: QueuedRequest) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        job.cancel.set()
        job.output.put_nowait(("gone", None))

    def stop(self) -> None:
        self._task.cancel()


async def _collect(job: QueuedRequest, cid: str, model_id: str, req, chat: bool) -> Response:
    """A whole (non-streaming) reply: every candidate's text, finish reason and logprobs."""
    choices = [{"text": [], "finish_reason": FinishReason.STOP, "logprobs": None if req.top_logprobs is None else []}
               for _ in range(req.n)]
    echoed = []
    while True:
        kind, value = await job.output.get()
        if kind == "echo":
            echoed = value
        elif kind == "token":
            i, text, lp = value
            choices[i]["text"].append(text)
            if lp is not None:
                choices[i]["logprobs"].append(lp)
        elif kind == "tool_delta":      # (a whole reply takes the parsed calls at the end)
            continue
        elif kind == "tool_calls":
            choices[value[0]]["tool_calls"] = [c.to_openai() for c in value[1]]
        elif kind == "finish":
            choices[value[0]]["finish_reason"] = value[1]
        elif kind == "done":
            break
        elif kind == "gone":
            return Response(status_code=499)
        else:
            raise _as_api_error(value)
    for c in choices:
        c["text"] = "".join(c["text"])
    if req.echo:
        for c in choices:
            c["text"] = req.prompt + c["text"]
            if c["logprobs"] is not None:
                c["logprobs"] = echoed + c["logprobs"]
    return JSONResponse(completion_body(cid, model_id, choices, value, chat=chat))


async def _stream(job: QueuedRequest, cid: str, model_id: str, req, chat: bool):
    """SSE body. If the client disconnects, Starlette cancels this generator: `finally` then
    cancels the generation."""
    created = int(time.time())
    usage = req.include_usage

    def chunk(**kw):
        return sse(chunk_body(cid, model_id, created, include_usage=usage, chat=chat, **kw))
    try:
        if chat:
            for i in range(req.n):
                yield chunk(index=i, delta={"role": "assistant", "content": ""})
        streamed: dict[int, set[int]] = {}      # choice -> the calls whose deltas went out
        while True:
            kind, value = await job.output.get()
            if kind == "token":
                i, text, lp = value
                yield chunk(index=i, delta={"content": text}, logprobs=None if lp is None else [lp])
            elif kind == "tool_delta":
                streamed.setdefault(value[0], set()).update(d["index"] for d in value[1])
                yield chunk(index=value[0], delta={"tool_calls": value[1]})
            elif kind == "tool_calls":      # whole: the calls not streamed piece by piece already
                rest = tool_api.tool_calls_delta(value[1], len(streamed.get(value[0], ())))
                if rest:
                    yield chunk(index=value[0], delta={"tool_calls": rest})
            elif kind == "finish":
                yield chunk(index=value[0], delta={}, finish_reason=value[1])
            elif kind == "done":
                if usage:
                    yield chunk(usage=usage_of(value))
                break
            elif kind == "error":    # an error mid-reply: tell the client in-band, as vLLM and llama.cpp do
                yield sse(_as_api_error(value).body())
                break
            elif kind == "gone":     # the client left just as the stream began
                return
        yield sse("[DONE]")
    finally:
        job.cancel.set()


def _unknown_model(name, served_id: str) -> ApiError:
    return ApiError(404, f"The model {name!r} does not exist. This server serves {served_id!r}.",
                    param="model", code="model_not_found")


def _shutting_down() -> ApiError:
    return ApiError(503, "The server is shutting down.", type="server_error", code="shutting_down")


def _as_api_error(e: Exception, prompt_param: str = "messages") -> ApiError:
    if isinstance(e, ApiError):
        return e
    if isinstance(e, PromptTooLongError):
        return ApiError(400, str(e), param=prompt_param, code="context_length_exceeded")
    if isinstance(e, TemplateError):
        return ApiError(400, f"The model's chat template refused these messages: {e}", param="messages")
    if isinstance(e, ShuttingDown):
        return _shutting_down()
    return ApiError(500, f"The model failed: {type(e).__name__}: {e}", type="server_error")

"""The server's side of the model runner (chatgui.common.runner).

A model is not thread-safe (its KV cache holds the last prompt), so requests are served one at
a time, in order, by the runner's one thread, with a bounded waiting line. Each job hands its
output back to the event loop through an asyncio.Queue (via call_soon_threadsafe), so the loop
never waits on the model. Items put on a job's queue:

    ("started", {"prompt_tokens": n})   the prompt fits; tokens follow
    ("echo", [token records])           the prompt's tokens and logprobs (QueuedRequest.echo_logprobs only)
    ("token", (i, text, record))        a piece of candidate i's reply; record: its logprobs or None
    ("tool_delta", (i, [dict]))         candidate i's calls so far: OpenAI `tool_calls` delta entries (a
                                        call's id and name, then pieces of its arguments; jobs with tools only)
    ("tool_calls", (i, [ToolCall]))     candidate i called tools (jobs with tools only; before its "finish")
    ("finish", (i, reason, tokens))     candidate i has ended (reason: a FinishReason; TOOL_CALLS after "tool_calls")
    ("done", usage)                     {"prompt_tokens", "completion_tokens", ...}: all have ended
    ("error", exception)                before "started" (the request was refused) or after
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
from dataclasses import dataclass, field

from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.records import FinishReason
from chatgui.common.runner import CancelFlag
from chatgui.common.runner import Job
from chatgui.common.runner import ModelRunner, QueueFull, ShuttingDown  # noqa: F401 - the server's errors too
from chatgui.common.types import SamplingSettings

log = logging.getLogger(__name__)


@dataclass
class QueuedRequest:
    """One API request's generation: queued, run as a runner Job, its output sent to the loop."""
    messages: list[PromptMessage] | None   # a chat, or None with `prompt`
    settings: SamplingSettings
    loop: asyncio.AbstractEventLoop
    prompt: str | None = None            # raw text to continue (/v1/completions)
    n: int = 1                           # candidates, decoded together as one batch
    top_logprobs: int | None = None      # None: no logprobs; else alternatives per token (0-20)
    constraint: object = None            # a token mask source (structured output), or None
    echo_logprobs: bool = False          # also send the prompt's tokens with their logprobs ("echo")
    tools: list | None = None            # [ToolSpec] the reply may call (server/tools.py), or None
    output: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancel: CancelFlag = field(default_factory=CancelFlag)

    def emit(self, kind: str, value=None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.output.put_nowait, (kind, value))
        except RuntimeError:       # the event loop is gone: nobody is listening any more
            self.cancel.set()


class GenerationWorker:
    """Requests become jobs of a ModelRunner of the server's own; `model` is the runner's backend,
    a ServableBackend (chatgui.common.backend)."""

    def __init__(self, model, max_waiting: int = 8):
        self.max_waiting = max_waiting
        self.runner = ModelRunner("chatgui-server-model", max_waiting=max_waiting)
        self.runner.backend = model       # before any job: the runner thread reads it only in jobs
        self._jobs: list[tuple[QueuedRequest, Job]] = []
        self._lock = threading.Lock()

    @property
    def model(self):
        return self.runner.backend

    def submit(self, job: QueuedRequest) -> None:
        """Queue a job; QueueFull when max_waiting others already wait, ShuttingDown once stopping."""
        with self._lock:
            self._jobs = [(j, r) for j, r in self._jobs if not r.done.is_set()]
            self._jobs.append((job, self.runner.submit(lambda _r: self._serve(job), cancel=job.cancel)))

    @property
    def waiting(self) -> int:
        return self.runner.waiting

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every job (running or waiting) and end the thread. A job that never ran is told
        so here (the runner skips a cancelled job without a word)."""
        with self._lock:
            jobs = list(self._jobs)
        for job, _r in jobs:
            job.cancel.set()
        self.runner.close(timeout)
        for job, r in jobs:
            if not r.started.is_set():
                job.emit("error", ShuttingDown())

    def _serve(self, job: QueuedRequest) -> None:
        try:
            run = start_run(self.model, job)
        except Exception as e:   # noqa: BLE001 - PromptTooLongError, TemplateError, ...: the caller maps it
            job.emit("error", e)
            return
        job.emit("started", {"prompt_tokens": run.stats.prompt_tokens})
        if job.echo_logprobs:
            job.emit("echo", _prompt_logprobs(self.model, run.prompt_ids, job.top_logprobs))
        choices = run.choices if job.n > 1 else [run]
        sent = [[] for _ in choices]
        finished = [False] * len(choices)
        filters = [_tool_filter(self.model, job, c) for c in choices]
        try:
            for i, event in (run.events() if job.n > 1 else ((0, e) for e in run)):
                if event is None:                 # choice i is complete (batches only)
                    finished[i] = self._finish(job, i, choices[i], sent[i], filters[i])
                    continue
                text = event.text if filters[i] is None else filters[i].feed(event.text)
                if text or job.top_logprobs is not None and filters[i] is None:
                    sent[i].append(text)
                    job.emit("token", (i, text, _logprob_record(self.model, event, job.top_logprobs)))
                if filters[i] is not None:
                    deltas = filters[i].feed_token(event.token_id)
                    if deltas:
                        job.emit("tool_delta", (i, deltas))
        except Exception as e:   # noqa: BLE001 - e.g. out of memory mid-reply: report, keep serving
            log.exception("generation failed")
            job.emit("error", e)
            return
        for i, choice in enumerate(choices):
            if not finished[i]:
                self._finish(job, i, choice, sent[i], filters[i])
        if any(c.stats.finish_reason == FinishReason.CANCELLED for c in choices) and self.runner.closing.is_set():
            job.emit("error", ShuttingDown())
            return
        st = run.stats
        job.emit("done", {"prompt_tokens": st.prompt_tokens,
                          "completion_tokens": sum(c.stats.generated_tokens for c in choices),
                          "time_to_first_token": st.time_to_first_token, "tokens_per_second": st.tokens_per_second})

    @staticmethod
    def _finish(job: QueuedRequest, index: int, gen, sent: list[str], tools=None) -> bool:
        if tools is not None:        # a reply that may call tools: its calls, or the text held back
            tail, calls = tools.finish(gen)
            if tail:
                job.emit("token", (index, tail, None))
            if calls:
                job.emit("tool_calls", (index, calls))
                job.emit("finish", (index, FinishReason.TOOL_CALLS, gen.stats.generated_tokens))
                return True
            job.emit("finish", (index, gen.stats.finish_reason, gen.stats.generated_tokens))
            return True
        # The engine flushes text it held back (a possible stop string) into gen.text at the end
        # without an event; send it too.
        sent_text = "".join(sent)
        if gen.text.startswith(sent_text) and len(gen.text) > len(sent_text):
            job.emit("token", (index, gen.text[len(sent_text):], None))
        job.emit("finish", (index, gen.stats.finish_reason, gen.stats.generated_tokens))
        return True


def start_run(model, job: QueuedRequest):
    """A Generation (n = 1) or a batch of n (engine/batch.py) for the job. model: a ServableBackend."""
    extra = {}
    if job.top_logprobs is not None and job.top_logprobs > 5:
        extra["top_alternatives"] = job.top_logprobs
    if job.prompt is not None:
        extra["prompt_ids"] = model.tokenize(job.prompt)
    elif job.tools is not None or any(m.role is Role.TOOL or m.tool_calls for m in job.messages):
        # the model's template renders the tools (and earlier calls and results) itself
        from chatgui.engine.tool_calls import detect_format, tool_prompt_ids
        extra["prompt_ids"], _dropped = tool_prompt_ids(model, job.messages, job.tools or [],
                                                        detect_format(model.template.source),
                                                        job.settings.max_new_tokens)
    if job.constraint is not None:
        extra["constraint"] = job.constraint
    if job.n > 1:
        return model.generate_candidates(job.messages, job.settings, job.n, job.cancel, **extra)
    return model.generate(job.messages, job.settings, job.cancel, **extra)


def _tool_filter(model, job: QueuedRequest, gen):
    """A server/tools.py ToolReplyFilter for a choice of a job whose reply may call tools."""
    constraint = getattr(gen, "constraint", None)
    if not job.tools or constraint is None:
        return None
    from .tools import ToolReplyFilter
    return ToolReplyFilter(model, job.tools, constraint)


def _logprob_record(model, event, k: int | None) -> dict | None:
    """The model's own probabilities for one generated token, as protocol.chat_logprob reads them."""
    if k is None:
        return None
    return {"token": model.token_text(event.token_id), "bytes": list(model.token_bytes(event.token_id)),
            "prob": event.prob,
            "top": [(a.text, list(model.token_bytes(a.token_id)), a.prob) for a in event.alternatives[:k]]}


def _prompt_logprobs(model, ids: list[int], k: int) -> list[dict]:
    """Records for the prompt's own tokens (the first has no logprob: nothing comes before it).
    Run here, on the model's thread, before the reply's prefill."""
    scores = model.prompt_logprobs(ids, k)
    out = []
    for pos, tid in enumerate(ids):
        entry = {"token": model.token_text(tid), "bytes": list(model.token_bytes(tid)), "prob": None, "top": None}
        if pos:
            chosen, top = scores[pos - 1]
            entry["prob"] = math.exp(chosen)
            entry["top"] = [(model.token_text(i), None, math.exp(v)) for v, i in top]
        out.append(entry)
    return out

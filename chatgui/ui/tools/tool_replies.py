"""Replies that may call tools: the job that runs engine/tool_loop.run_tool_loop on the model
runner, its events as queued signals, the cards they fill, and the settings they need.

The reply streams as any other (ReplyController gets the same started/tokens/finished/failed
signals); the loop's "call" and "result" events arrive as ToolReplyHandle.tool_event and are
kept in the reply's meta as typed records (ReplyMeta.tool_calls, tool_results), which is what the
chat saves, exports and draws again. Consent is asked through ConsentAsker. A replay gives the
model the stored results again instead of running the tools."""
from __future__ import annotations

import random
import threading
from typing import Sequence

from PySide6.QtCore import QObject, Signal

from chatgui.common.runner import Job, ShuttingDown, job_backend
from chatgui.common.prompt import PromptMessage
from chatgui.common.records import ReplyMeta
from chatgui.common.tools import ToolCall, ToolResult
from chatgui.session import tool_exchanges
from chatgui.common.types import SamplingSettings
from chatgui.tools.toolbox import ToolBox
from chatgui.session.replies import finished_payload
from chatgui.ui.backends.engine_client import ReplyHandle, started_info

from .consent_dialog import ConsentAsker
from .tool_cards import cards_of
from .tool_settings import ToolSettings

HISTORY_HITS_PER_CHAT = 2
EXCERPT_CHARS = 300


class ToolReplyHandle(ReplyHandle):
    tool_event = Signal(int, str, object)   # request id, "call" / "result" / "mcp_errors", the record


def supports_tools(backend) -> bool:
    """The local engine (its own template and constrained decoding), or a server backend that passes
    the tools on (remote/client.py reply_with_tools: the server formats and parses the calls; the
    loop, consent and the tools themselves stay here)."""
    if backend is None:
        return False
    if hasattr(backend, "reply_with_tools"):
        return True
    return getattr(backend, "template", None) is not None and backend.capabilities.json_constraints


def history_search(store):
    """search(query, limit) -> excerpts of earlier chats (the store's full-text search), for the
    search_chat_history tool. Runs on the runner thread: the store reads with a connection per thread."""
    def search(query: str, limit: int) -> list[str]:
        hits, folded = [], query.casefold()
        for chat_id in store.search(query):
            chat = store.load(chat_id, tokens=False)
            found = 0
            for message in chat.messages.values():
                at = message.content.casefold().find(folded)
                if at < 0 or isinstance(message.meta, ReplyMeta) and message.meta.tool_calls:
                    continue
                start = max(0, at - EXCERPT_CHARS // 2)
                hits.append(f"{chat.title or chat_id} ({message.role}): …{message.content[start:start + EXCERPT_CHARS]}…")
                found += 1
                if found >= HISTORY_HITS_PER_CHAT or len(hits) >= limit:
                    break
            if len(hits) >= limit:
                break
        return hits
    return search


def stored_runner(results: list[ToolResult]):
    """A replay's `run`: the stored results in order (the tools are not run again)."""
    queue = list(results)

    def run(call: ToolCall) -> ToolResult:
        for i, r in enumerate(queue):
            if r.name == call.name:
                queue.pop(i)
                return ToolResult(call.id, r.name, r.content, r.is_error, r.seconds)
        return ToolResult(call.id, call.name, "This call was not made in the reply being replayed.", True)
    return run


def tool_reply_job(runner, messages: Sequence[PromptMessage], settings: SamplingSettings, make_box, ask,
                   max_rounds: int, policy=None, chat_id: str | None = None, stored: list[ToolResult] | None = None,
                   tool_choice="auto", check=None):
    """A runner job: one reply through the tool loop. make_box() -> (ToolBox, server errors);
    ask(cancel) -> the consent dialog's callback; policy: the ConsentPolicy; stored: a replay's
    results, given back instead of running the tools; check(backend) may refuse before anything
    starts (a replay needs the same model file). Events: the loop's (engine/tool_loop.py), but
    "started" with the first round's Generation (its prompt as rendered with the tools) instead of
    each round's "generation", and "done" with the ToolTurn."""
    def run(job: Job) -> None:
        backend = job_backend(runner, check)
        from chatgui.engine.tool_loop import run_tool_loop   # the engine (torch) loads on first use

        box, errors = make_box()
        try:
            if errors:
                job.emit("mcp_errors", errors)
            rounds_begun = []

            def on_event(kind: str, value) -> None:
                if kind != "generation":
                    job.emit(kind, value)
                elif not rounds_begun:
                    rounds_begun.append(value)
                    job.emit("started", value)

            if stored is not None:
                consent, call = (lambda c: True), stored_runner(stored)
            else:
                consent, call = box.consent_gate(policy, chat_id, ask(job.cancelled)), box.call
            turn = run_tool_loop(backend, messages, box.specs, settings, run=call, consent=consent,
                                 on_event=on_event, cancel=job.cancelled, max_rounds=max_rounds,
                                 tool_choice=tool_choice)
            job.emit("done", turn)
        finally:
            box.close()
    return run


class ToolsFeature(QObject):
    """The window's tool calling: settings, the MCP servers, consent, the replies' jobs and cards."""
    settings_changed = Signal()     # saved by the window's SaveManager
    notice = Signal(str, str, str)  # key, kind, text

    def __init__(self, engine, view, app_settings, store, parent_widget=None):
        super().__init__(parent_widget)
        self.engine, self.view, self.app_settings, self.store = engine, view, app_settings, store
        self.settings = ToolSettings.from_dict(app_settings.tools)
        self.policy = self.settings.policy()
        self.asker = ConsentAsker(parent_widget)
        self._hub = None
        self._hub_config = None
        self._hub_lock = threading.Lock()
        self._live: dict[int, tuple] = {}    # request id -> (chat, message id)
        # The first round's tool_choice: "auto"; "required" or a tool's name forces a call (the
        # API's option; tests force one because a tiny random model never calls by itself).
        self.tool_choice = "auto"

    # -- settings -------------------------------------------------------------------------
    def apply(self, settings: ToolSettings) -> None:
        """New settings from the Tools dialog: kept, saved, and the servers restarted if changed."""
        self.settings = settings
        self.policy.always = set(settings.policy().always)
        self.policy.servers = set(settings.policy().servers)
        self._save()

    def _save(self) -> None:
        self.settings.consent = self.policy.to_dict()
        self.app_settings.tools = self.settings.to_dict()
        self.settings_changed.emit()

    def hub(self):
        """The MCP servers in use (one McpHub, started on demand), or None when none is on."""
        from chatgui.tools.mcp_client import McpHub

        servers = [s for s in self.settings.servers if s.enabled]
        with self._hub_lock:
            if servers != self._hub_config:
                old, self._hub = self._hub, (McpHub(servers) if servers else None)
                self._hub_config = servers
                if old is not None:
                    threading.Thread(target=old.close, name="chatgui-mcp-close", daemon=True).start()
            return self._hub

    def make_box(self):
        """The tools of one reply (on the runner thread: listing MCP tools starts their servers)."""
        s = self.settings
        box = ToolBox()
        box.add_builtins(calculator=s.calculator, clock=s.clock,
                         history_search=history_search(self.store) if s.history else None)
        hub = self.hub()
        errors = box.add_mcp(hub) if hub is not None else []
        return box, errors

    def active(self) -> bool:
        return self.settings.any_enabled() and supports_tools(self.engine.runner.backend)

    def wants(self, chat, replay_of: str | None = None) -> bool:
        """Whether this reply goes through the tool loop: tools are on and the local engine is
        loaded; a replay only when the reply it repeats called tools (their results are reused)."""
        if not self.active():
            return False
        original = chat.messages.get(replay_of) if replay_of else None
        return not replay_of or bool(original is not None and original.reply_meta.tool_calls)

    def close(self) -> None:
        with self._hub_lock:
            hub, self._hub, self._hub_config = self._hub, None, None
        if hub is not None:
            hub.close()

    # -- replies --------------------------------------------------------------------------
    def generate(self, chat, message_id: str, messages: Sequence[PromptMessage], sampling: dict, connect,
                 replay_of: str | None = None, expect_sha256: str | None = None, **_options) -> ReplyHandle:
        """Queue a reply that may call tools; like EngineClient.generate, with cards for its calls.
        A replay (replay_of) must use the model file it was made with (expect_sha256) and is given
        the stored results instead of running the tools."""
        engine = self.engine
        engine.stop_preparing()
        settings = SamplingSettings.from_dict(sampling)
        if settings.seed is None:   # one seed for every round, recorded: the reply can be replayed
            settings = settings.with_(seed=random.randrange(2 ** 31))
        stored = None
        if replay_of and replay_of in chat.messages:
            stored = [r for _c, r in tool_exchanges(chat.messages[replay_of].reply_meta) if r is not None]

        def connect_all(handle: ToolReplyHandle) -> None:
            # Before the reply controller's: an "Always" is kept by the time the reply is over.
            handle.tool_event.connect(self._on_tool_event)
            handle.finished.connect(self._on_done)
            handle.failed.connect(self._on_done)
            connect(handle)
        handle = engine.new_handle(connect_all, ToolReplyHandle)
        self._live[handle.request_id] = (chat, message_id)
        fn = tool_reply_job(engine.runner, messages, settings, self.make_box, self.asker.ask_for,
                            self.settings.max_rounds, self.policy, chat.id, stored, self.tool_choice,
                            engine.worker.replay_check(expect_sha256))
        try:
            handle.job = engine.runner.submit(fn, self._sink(handle, settings))
        except ShuttingDown:
            pass
        return handle

    def _sink(self, handle: ToolReplyHandle, settings: SamplingSettings):
        """The job's events (runner thread) as the handle's signals (queued to the GUI)."""
        worker = self.engine.worker
        state = {"started": False, "texts": []}

        def sink(job: Job, kind: str, value) -> None:
            rid = handle.request_id
            if kind == "started":
                state["started"] = True
                handle.started.emit(rid, started_info(self.engine.runner.backend, value.stats))
            elif kind == "text":
                state["texts"].append(value)
                handle.tokens.emit(rid, value, [])
            elif kind in ("call", "result", "mcp_errors"):
                handle.tool_event.emit(rid, kind, value)
            elif kind == "done":
                handle.finished.emit(rid, finished_payload(self._meta(value, settings), "".join(state["texts"])))
                backend = self.engine.runner.backend
                if backend is not None and backend.capabilities.replay and not worker.closing.is_set():
                    worker.model_hash(backend)   # recorded with the reply, for Replay
            elif kind == "error":
                handle.failed.emit(rid, *worker.describe_failure(value, state["started"]))
        return sink

    def _meta(self, turn, settings: SamplingSettings) -> ReplyMeta:
        """What the reply records: as any reply's (the rounds' statistics together), with its calls,
        their results and how many rounds it took."""
        stats = turn.stats
        meta = self.engine.worker.reply_meta(self.engine.runner.backend, stats, stats.generated_tokens, settings)
        meta.tool_calls, meta.tool_results, meta.tool_rounds = list(turn.calls), list(turn.results), turn.rounds
        return meta

    def _on_tool_event(self, request_id: int, kind: str, value) -> None:
        live = self._live.get(request_id)
        if live is None:
            return
        chat, message_id = live
        if kind == "mcp_errors":
            self.notice.emit("mcp", "warning", " ".join(value))
            return
        message = chat.messages.get(message_id)
        if message is None:
            return
        meta = message.reply_meta   # new lists, never changed in place: a save's snapshot keeps its own
        if kind == "call":
            meta.tool_calls = [*(meta.tool_calls or []), value]
        else:
            meta.tool_results = [*(meta.tool_results or []), value]
        widget = self.view.widget_for(message_id)
        if widget is None:
            return
        cards = cards_of(widget)
        if kind == "call":
            cards.add_call(value, running=True)
        else:
            cards.set_result(value)

    def _on_done(self, request_id: int, *_details) -> None:
        live = self._live.pop(request_id, None)
        if live is not None:
            widget = self.view.widget_for(live[1])
            cards = cards_of(widget, create=False) if widget is not None else None
            if cards is not None:
                cards.stop_running()
        if self.policy.to_dict() != self.settings.consent:   # "Always" was chosen: keep it
            self._save()

"""The life of one streaming reply, from request to saved message.

Tokens arrive from the worker in batches; they are shown at most ~30 times a second (a
single-shot QTimer coalesces them, and slows down if rendering gets slow). The partial reply is
saved every 2 seconds and when it ends. Stop takes effect in the window at once: the partial
answer is kept and the worker's last words about that request only fill in its statistics.

Several answers at once ("Generate 3 answers", one batch): the first streams into the view as a
reply does; the others fill their messages in the background and are saved when they end. The
status bar says how far all of them are (batch_progress), and the speed once the last one ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from chatgui.common.records import FinishReason, ReplyMeta
from chatgui.session import Chat, Role
from chatgui.session.failures import FailureKind, failure_notice
from chatgui.session.replies import failed_meta, faster, read_finished, stopped_meta
from chatgui.ui.common.i18n import translate

from chatgui.ui.chat.conversation_view import ConversationView
from chatgui.ui.backends.engine_client import EngineClient, connect_reply

MIN_FLUSH_MS = 33          # ~30 updates per second at most
AUTOSAVE_MS = 2000


@dataclass
class ActiveReply:
    request_id: int
    chat: Chat
    message_id: str
    text: str = ""
    tokens: list = field(default_factory=list)   # [TokenRecord, ...]
    pending: list = field(default_factory=list)  # text received but not shown yet
    stopped: bool = False


class ReplyController(QObject):
    busy_changed = Signal(bool)
    notice = Signal(str, str, str)        # key, kind ("info", "warning", "error"), text
    save_requested = Signal(object)       # a Chat to save
    chat_changed = Signal(object)         # a Chat whose messages changed shape (redraw it)
    started = Signal(object)              # worker's start info (prompt tokens, ...)
    finished = Signal(object)             # the finished reply's ReplyMeta (of a batch: once, when all are done)
    batch_progress = Signal(str, float)   # several answers: what is written so far, fraction; ("", -1) at the end

    def __init__(self, engine: EngineClient, view: ConversationView, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.view = view
        self.active: ActiveReply | None = None
        self.tools = None   # ui/tools/tool_replies.ToolsFeature: replies that may call tools
        self._others: dict[int, ActiveReply] = {}           # more answers of the same batch, not on screen
        self._stopped: dict[int, ActiveReply] = {}          # stopped, waiting for the worker's stats
        self._awaiting_hash: list[tuple[Chat, str, str]] = []  # (chat, message id, model path)
        self._flush_timer = QTimer(self, singleShot=True, interval=MIN_FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._autosave = QTimer(self, interval=AUTOSAVE_MS)
        self._autosave.timeout.connect(self._save_partial)
        # Several answers at once: all of them, the largest number of tokens each may have, and
        # the statistics of the batch (the last answer to end carries its speed).
        self._batch: list[ActiveReply] = []
        self._batch_limit = 0
        self._batch_meta: ReplyMeta | None = None
        self._progress_timer = QTimer(self, singleShot=True, interval=150)
        self._progress_timer.timeout.connect(self._report_batch)
        engine.worker.model_hashed.connect(self._on_model_hashed)

    @property
    def busy(self) -> bool:
        return self.active is not None or bool(self._others)

    # -- starting and stopping -------------------------------------------------------------
    def start(self, chat: Chat, user_message_id: str, sampling: dict, meta: ReplyMeta | None = None,
              prefix_tokens: list | None = None, **options) -> str:
        """Add an empty assistant reply under the user message and ask the worker for it.
        prefix_tokens: token records the reply starts with (branch from a token; the worker gets
        their ids as reply_prefix_ids); meta: more for the new message's meta; options: for
        EngineClient.generate (e.g. expect_sha256)."""
        prefix = list(prefix_tokens or [])
        text = "".join(t.text for t in prefix)
        meta = meta or ReplyMeta()
        meta.sampling = dict(sampling)
        reply = chat.add_message(user_message_id, Role.ASSISTANT, text, meta=meta)
        chat.select(reply.id)
        if prefix:
            options["reply_prefix_ids"] = [t.id for t in prefix]
        replay_of = meta.replay_of
        if self.tools is not None and not prefix and self.tools.wants(chat, replay_of):
            # the tool loop renders earlier calls and results with the model's own template
            messages = chat.to_messages_for_model(upto=user_message_id)
            handle = self.tools.generate(chat, reply.id, messages, sampling, self._connect, replay_of, **options)
        else:
            # a plain reply (another model, a server, tools off) is sent the text of each turn
            messages = chat.to_messages_for_model(upto=user_message_id, tool_turns=False)
            handle = self.engine.generate(messages, sampling, self._connect, **options)
        self.active = ActiveReply(handle.request_id, chat, reply.id, text, prefix)
        self._autosave.start()
        self.busy_changed.emit(True)
        return reply.id

    def start_candidates(self, chat: Chat, user_message_id: str, sampling: dict, n: int) -> list[str]:
        """n answers to the user message, written together as one batch; the first is shown."""
        replies = [chat.add_message(user_message_id, Role.ASSISTANT, "", meta=ReplyMeta(sampling=dict(sampling)))
                   for _ in range(n)]
        chat.select(replies[0].id)
        messages = chat.to_messages_for_model(upto=user_message_id, tool_turns=False)
        handles = self.engine.generate_candidates(messages, sampling, n, self._connect)
        self.active = ActiveReply(handles[0].request_id, chat, replies[0].id)
        self._others = {h.request_id: ActiveReply(h.request_id, chat, r.id) for h, r in zip(handles[1:], replies[1:])}
        self._batch = [self.active, *self._others.values()]
        self._batch_limit = max(1, int(sampling.get("max_new_tokens") or 1))
        self._batch_meta = None
        self._autosave.start()
        self.busy_changed.emit(True)
        self._report_batch()
        return [r.id for r in replies]

    def _connect(self, handle) -> None:
        connect_reply(handle, self._on_started, self._on_tokens, self._on_finished, self._on_failed)

    def attach(self) -> None:
        """The view was rebuilt or drew more messages: if it shows the streaming message, stream
        into its widget (a new one starts streaming; one that already does keeps going)."""
        r = self.active
        widget = self.view.widget_for(r.message_id) if r else None
        if widget is not None:
            widget.show_streamed(r.text)

    def stop(self) -> None:
        """Stop the reply now, and the other answers of its batch (also once the shown one is
        done: Stop is lit while any is written); the text so far is kept."""
        for other in list(self._others.values()):
            self._stop_one(other)
        r = self.active
        if r is None:
            return
        self._flush()
        self._stop_one(r)

    def _stop_one(self, r: ActiveReply) -> None:
        self.engine.cancel(r.request_id)   # the worker sees this between two tokens
        r.stopped = True
        if not r.text:   # stopped before the first word: there is no answer to keep
            self._discard(r)
            return
        self._stopped[r.request_id] = r
        self._complete(r, r.text, ReplyMeta(finish_reason=FinishReason.CANCELLED, tokens=len(r.tokens)))

    # -- from the worker -------------------------------------------------------------------
    def _on_started(self, request_id: int, info: dict) -> None:
        other = self._others.get(request_id)
        if other is not None:
            other.chat.update_content(other.message_id, "", ReplyMeta(seed=info["seed"], prompt_tokens=info["prompt_tokens"]))
            return
        r = self.active
        if r is None or r.request_id != request_id:
            return
        r.chat.update_content(r.message_id, r.text, ReplyMeta(seed=info["seed"], prompt_tokens=info["prompt_tokens"]))
        if info.get("dropped_messages"):
            self.notice.emit("dropped", "info", self.tr("{count} older messages did not fit in the model's context "
                                                        "and were left out of this reply.").format(
                                                            count=info["dropped_messages"]))
        self.started.emit(info)

    def _on_tokens(self, request_id: int, text: str, records: list) -> None:
        other = self._others.get(request_id)
        if other is not None:   # not on screen: keep it, and say how far it is
            other.text += text
            other.tokens.extend(records)
            self._schedule_batch_report()
            return
        r = self.active
        if r is None or r.request_id != request_id:
            return   # a reply that was stopped: keep exactly what was shown
        r.pending.append(text)
        r.tokens.extend(records)
        self._schedule_batch_report()
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _on_finished(self, request_id: int, payload: dict) -> None:
        meta, final_text = read_finished(payload)
        other = self._others.get(request_id)
        if other is not None:
            self._keep_batch_meta(meta)
            text = final_text if final_text is not None else other.text
            if text:
                self._complete(other, text, meta)
            else:   # stopped before its first word: nothing to keep
                self._discard(other)
            return
        stopped = self._stopped.pop(request_id, None)
        if stopped is not None:   # only the statistics are new; the text stays as it was stopped
            meta = stopped_meta(meta, len(stopped.tokens))
            self._record_meta(stopped.chat, stopped.message_id, meta)
            self.finished.emit(meta)
            return
        r = self.active
        if r is None or r.request_id != request_id:
            return
        self._flush()
        text = final_text if final_text is not None else r.text
        if self._batch:
            self._keep_batch_meta(meta)   # said when the last answer of the batch is done (_end)
            self._complete(r, text, meta)
            return
        self._complete(r, text, meta)
        self.finished.emit(meta)

    def _on_failed(self, request_id: int, kind_value: str, message: str) -> None:
        kind = FailureKind(kind_value)
        self._stopped.pop(request_id, None)
        other = self._others.get(request_id)
        if other is not None:
            if other.text:
                self._complete(other, other.text, failed_meta(message))
            else:
                self._discard(other)
            return
        r = self.active
        if r is None or r.request_id != request_id:
            return
        self._flush()
        if r.text and kind is not FailureKind.MODEL_MISMATCH:   # a replay refused before it started keeps nothing
            self._complete(r, r.text, failed_meta(message, len(r.tokens)))
        else:   # nothing was written: take the empty reply away, keep the question
            self._discard(r)
        self.notice.emit(*failure_notice(kind, message, translate))

    def _on_model_hashed(self, path: str, sha256: str) -> None:
        waiting, self._awaiting_hash = self._awaiting_hash, []
        for chat, message_id, model_path in waiting:
            if model_path == path:
                self._record_meta(chat, message_id, ReplyMeta(model_sha256=sha256))
            else:
                self._awaiting_hash.append((chat, message_id, model_path))

    # -- helpers ---------------------------------------------------------------------------
    def _flush(self) -> None:
        r = self.active
        if r is None or not r.pending:
            return
        r.text += "".join(r.pending)
        r.pending.clear()
        r.chat.update_content(r.message_id, r.text)
        widget = self.view.widget_for(r.message_id)
        if widget is None:
            return
        widget.show_streamed(r.text)
        # Slow renders (a huge table in the tail) make updates rarer instead of freezing the window.
        cost_ms = int(widget.last_render_seconds() * 1000)
        self._flush_timer.setInterval(max(MIN_FLUSH_MS, 4 * cost_ms))

    def _save_partial(self) -> None:
        if self.active is not None:
            self._flush()
        writing = [r for r in (self.active, *self._others.values()) if r is not None]
        for r in writing:
            r.chat.update_content(r.message_id, r.text, ReplyMeta(token_data=r.tokens, partial=True))
        if writing:
            self.save_requested.emit(writing[0].chat)   # one batch: every answer is in the same chat

    def _complete(self, r: ActiveReply, text: str, meta: ReplyMeta) -> None:
        self._end(r)
        r.text = text
        meta.token_data = r.tokens
        message = r.chat.messages[r.message_id]
        message.reply_meta.partial = None
        r.chat.update_content(r.message_id, text, meta)
        if not meta.model_sha256 and meta.model_path:
            self._awaiting_hash.append((r.chat, r.message_id, meta.model_path))
        widget = self.view.widget_for(r.message_id)
        if widget is not None:
            widget.end_stream(text)
            widget.update_info(message.reply_meta)
        self.save_requested.emit(r.chat)

    def _discard(self, r: ActiveReply) -> None:
        self._end(r)
        r.chat.remove(r.message_id)
        self.chat_changed.emit(r.chat)
        self.save_requested.emit(r.chat)

    def _end(self, r: ActiveReply) -> None:
        if self._others.pop(r.request_id, None) is None and self.active is r:
            self._flush_timer.stop()
            self.active = None
        if not self.busy:
            self._autosave.stop()
            self.busy_changed.emit(False)
            self._end_batch()
        elif self._batch:
            self._report_batch()

    # -- several answers at once -------------------------------------------------------------
    def _keep_batch_meta(self, meta: ReplyMeta) -> None:
        """An answer that ends before the others has no speed yet (the batch measures it at its
        end): keep the statistics that have one."""
        if faster(meta, self._batch_meta):
            self._batch_meta = meta

    def _schedule_batch_report(self) -> None:
        if self._batch and not self._progress_timer.isActive():
            self._progress_timer.start()

    def _report_batch(self) -> None:
        """"Writing 3 answers: 1 done · 12, 30, 41 tokens", and how far the batch is."""
        if not self._batch:
            return
        running = {r.request_id for r in (self.active, *self._others.values()) if r is not None}
        done = sum(1 for r in self._batch if r.request_id not in running)
        counts = [len(r.tokens) for r in self._batch]
        fraction = sum(self._batch_limit if r.request_id not in running else min(len(r.tokens), self._batch_limit)
                       for r in self._batch) / (self._batch_limit * len(self._batch))
        text = self.tr("Writing {n} answers: {done} done · {counts} tokens").format(
            n=len(self._batch), done=done, counts=", ".join(str(c) for c in counts))
        self.batch_progress.emit(text, fraction)

    def _end_batch(self) -> None:
        if not self._batch:
            return
        self._batch = []
        self._progress_timer.stop()
        self.batch_progress.emit("", -1.0)
        if self._batch_meta is not None:
            meta, self._batch_meta = self._batch_meta, None
            self.finished.emit(meta)

    def _record_meta(self, chat: Chat, message_id: str, meta: ReplyMeta) -> None:
        message = chat.messages.get(message_id)
        if message is None:
            return
        if not meta.model_sha256 and meta.model_path:
            self._awaiting_hash.append((chat, message_id, meta.model_path))
        message.reply_meta.merge(meta)
        widget = self.view.widget_for(message_id)
        if widget is not None:
            widget.update_info(message.reply_meta)
        self.save_requested.emit(chat)

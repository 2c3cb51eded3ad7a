"""The window's documents: files attached to the next message (paperclip, drop, paste), the
prompt made from them and the knowledge folders when a message is sent, and the background
indexer of those folders.

Reading a file, counting its tokens, retrieving passages and searching the index all run on the
window's job threads (ui/common/jobs.py); files are parsed in one ReaderProcess kept for the
window's life (a hostile file costs that child, not the window). The indexer runs on its own
thread; its callbacks come back as signals (queued: they are emitted on the job's thread).
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog

from chatgui import documents as docs
from chatgui.common.records import Attachment as AttachmentRecord, ReplyMeta
from chatgui.session import Chat, Role, UserMeta

from chatgui.ui.common.file_dialogs import remember_folder, start_folder
from chatgui.ui.documents.chips import Chip, ChipRow, chip_text
from chatgui.ui.documents.embedder import LazyEmbedder
from chatgui.ui.documents.folder_watch import FolderWatch, watch_paths

TEMPLATE_TOKENS = 128           # the chat template's own tokens around the message
# Files too long to go in whole give their best passages, up to this many tokens (not the whole
# context): a small model answers better from a few passages than from a context full of them,
# and its first word comes sooner. Measured: an 80-page PDF's 37 passages filled 3,700 of 4,096
# tokens; SmolLM2-135M answered wrongly after 215 s (first token, 2 busy cores).
RETRIEVED_MAX_TOKENS = 2000
KNOWLEDGE_SHARE = 3             # knowledge passages take at most a third of the room left...
KNOWLEDGE_MAX_TOKENS = 2000     # ...and at most this much: a small model reads a few passages best


def message_room(context: int, reply: int, history: int) -> int:
    """Tokens the new message (its sources, the instructions, the question) may take: the context
    less the reply and the chat so far, yet at least half of it (the engine then leaves out the
    oldest turns, and says so)."""
    free = context - reply - TEMPLATE_TOKENS
    return max(free - history, free // 2, 0)


def _cost(sources, count) -> int:
    return sum(count(s.text) + count(s.label()) + 4 for s in sources)


def attachment_from_record(record: AttachmentRecord) -> docs.Attachment:
    """A saved attachment as the documents package takes it, its passages rebuilt from the text
    saved with the chat (a PDF's by its '[page N]' marks, other files' by line), so that it can
    be prepared again (an edited question) when the file has moved or changed."""
    passages: list[docs.Passage] = []
    if record.kind == "pdf":
        parts = re.split(r"^\[page (\d+)\]\n", record.text, flags=re.MULTILINE)[1:]   # number, text, ...
        passages = [docs.Passage(text.rstrip("\n"), page=int(number), line=1)
                    for number, text in zip(parts[0::2], parts[1::2]) if text.strip()]
    else:
        passages = [docs.Passage(line, line=n) for n, line in enumerate(record.text.split("\n"), 1) if line.strip()]
    extraction = docs.Extraction(record.path, record.kind, passages, record.pages)
    chip = docs.AttachmentChip(record.name, record.path, record.kind, record.tokens, record.pages)
    return docs.Attachment(extraction, chip)


def record_of(attachment: docs.Attachment) -> AttachmentRecord:
    chip = attachment.chip
    return AttachmentRecord(chip.name, chip.path, chip.kind, chip.tokens, chip.pages, chip.mode, chip.passages,
                            chip.error, attachment.text if chip.mode != "failed" else "")


class DocumentsController(QObject):
    index_progress = Signal(object)    # IndexProgress, from the indexer's thread (queued)
    index_finished = Signal(object)    # IndexSummary
    attachments_changed = Signal()

    # False: files are read on the job thread instead of a child process (tests: no process start)
    separate_reader = True

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.pending: list[docs.Attachment] = []   # attached to the next message
        self.reading = 0                            # files being read
        self.preparing = False                      # a message's prompt is being made
        self._closed = False
        self._reader: docs.ReaderProcess | None = None
        self._reader_lock = threading.Lock()        # one file at a time through the reader
        self._index: docs.KnowledgeIndex | None = None
        self._index_lock = threading.Lock()
        self.index_error: str | None = None
        self.job: docs.IndexJob | None = None
        self.last_summary: docs.IndexSummary | None = None
        self._use_folders: dict[str, bool] = {}     # per chat, this session (else its last message says)
        self.page = None
        # the chosen embedding model (Knowledge page), loaded by its first use off the GUI thread
        self.embedder: LazyEmbedder | None = None
        model = window.settings.knowledge_model
        if model and Path(model).is_file():
            self.embedder = LazyEmbedder(model)
        # folders changed while the app runs: indexed again (those folders only) when the job is free
        self.watch = FolderWatch(self)
        self.watch.changed.connect(self._on_folders_changed)
        self._waiting_folders: set[int] = set()

        bar = window.input_bar
        self.chips = ChipRow(bar)
        self.chips.setObjectName("attachmentChips")
        self.chips.hide()
        bar.layout().insertWidget(0, self.chips)
        self.knowledge_toggle = QCheckBox(self.tr("Use knowledge folders"), bar)
        self.knowledge_toggle.setObjectName("knowledgeToggle")
        self.knowledge_toggle.setToolTip(self.tr("Search your knowledge folders for each message of this chat "
                                                 "and show the passages used as sources"))
        self.knowledge_toggle.toggled.connect(self._on_toggle)
        bar.layout().addWidget(self.knowledge_toggle)
        bar.attach_clicked.connect(self.choose_files)
        bar.files_pasted.connect(self.attach_files)
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        self.index_finished.connect(self._on_index_finished)
        self._update_toggle()
        if docs.default_index_path().exists():   # folders were added before: bring them up to date
            QTimer.singleShot(0, self.start_indexing)

    # -- attaching -------------------------------------------------------------------------
    def choose_files(self) -> None:
        settings = self.window.settings
        paths, _ = QFileDialog.getOpenFileNames(self.window, self.tr("Attach files"),
                                                start_folder(settings.folders, "attach"),
                                                self.tr("Documents (*.pdf *.docx *.txt *.md *.csv *.json *.html "
                                                        "*.htm *.py *.rst);;All files (*)"))
        if paths:
            remember_folder(settings.folders, "attach", paths[0])
            self.attach_files(paths)

    def attach_files(self, paths: list[str]) -> None:
        """Read each file off the GUI thread; its chip comes when it is read."""
        for path in paths:
            self.reading += 1
            self._show_reading()
            self.window.jobs.run(lambda path=path: self._read(path), self._on_read)

    def _read(self, path: str) -> docs.Attachment:
        count = self._counter()
        if not self.separate_reader:
            return docs.read_attachment(path, count)
        with self._reader_lock:
            if self._closed:
                raise RuntimeError("the window is closing")
            if self._reader is None:
                self._reader = docs.ReaderProcess(200, 40)
            return docs.read_attachment(path, count, reader=self._reader)

    def _on_read(self, attachment: docs.Attachment | None, error: Exception | None) -> None:
        self.reading -= 1
        self._show_reading()
        if self._closed:
            return
        if error is not None or attachment is None:
            self.window.notices.show_notice("attach-error", self.tr("A file could not be attached: {error}").format(
                error=error), "warning")
            return
        if attachment.chip.mode == "failed":   # said plainly; the message and the other files stay
            self.window.notices.show_notice(
                "attach-error", self.tr("“{name}” cannot be attached: {reason}").format(
                    name=attachment.chip.name, reason=attachment.chip.error), "warning")
            return
        self.window.notices.remove("attach-error")
        self._add(attachment)

    def _add(self, attachment: docs.Attachment) -> None:
        self.pending.append(attachment)
        chip = self.chips.add(Chip(chip_text(record_of(attachment)), attachment.chip.path, removable=True))
        chip.remove_clicked.connect(lambda a=attachment, c=chip: self.remove(a, c))
        self.attachments_changed.emit()

    def remove(self, attachment: docs.Attachment, chip: Chip) -> None:
        self.pending = [a for a in self.pending if a is not attachment]
        self.chips.chips = [c for c in self.chips.chips if c is not chip]
        chip.hide()
        chip.deleteLater()
        self.chips.setVisible(bool(self.chips.chips))
        self.attachments_changed.emit()

    def _show_reading(self) -> None:
        if self.reading:
            self.window.status.showMessage(self.tr("Reading {count} file(s)…").format(count=self.reading))
        else:
            self.window.status.clearMessage()

    def _counter(self):
        """The loaded model's token count for a text (the approximation if it cannot count)."""
        backend = self.window.engine.worker.model
        tokenize = getattr(backend, "tokenize", None)
        if tokenize is None:
            return docs.approx_tokens

        def count(text: str) -> int:
            try:
                return len(tokenize(text, add_bos=False))
            except Exception:   # noqa: BLE001 (a model swapped meanwhile: the estimate will do)
                return docs.approx_tokens(text)
        return count

    def eventFilter(self, watched, event):   # noqa: N802 (Qt override): files dropped on the window
        if watched is self.window and event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if _dropped_files(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif watched is self.window and event.type() == QEvent.Type.Drop:
            files = _dropped_files(event.mimeData())
            if files:
                event.acceptProposedAction()
                self.attach_files(files)
                return True
        return super().eventFilter(watched, event)

    # -- sending ---------------------------------------------------------------------------
    def send_blocked_reason(self) -> str:
        if self.reading:
            return self.tr("A file is still being read: your message is sent once it is attached.")
        if self.preparing:
            return self.tr("Your message is being prepared with its documents.")
        return ""

    def use_folders(self, chat: Chat | None) -> bool:
        if chat is None:
            return False
        if chat.id in self._use_folders:
            return self._use_folders[chat.id]
        last = next((m for m in reversed(chat.active_path()) if m.role == Role.USER), None)
        return bool(last is not None and last.user_meta.knowledge)

    def takes_over(self, chat: Chat, text: str, edit_of: str | None = None) -> bool:
        """Send `text` with the attached files and the knowledge folders' passages, when there are
        any: the prompt is made off the GUI thread, then window.post_message sends it. False:
        nothing to add, the window sends the text as it is. edit_of: the user message this one
        replaces (an edit keeps that message's files, read again from the chat)."""
        use_folders = self.use_folders(chat) and self._open_index() is not None
        if edit_of is not None:
            attachments = [attachment_from_record(r) for r in chat.messages[edit_of].user_meta.attachments
                           if r.mode != "failed"]
            history = chat.to_messages_for_model(upto=edit_of)[:-1]
        else:
            attachments, self.pending = self.pending, []
            history = chat.to_messages_for_model()
        if not attachments and not use_folders:
            return False
        if edit_of is None:
            self.chips.clear()
            self.window.input_bar.clear()
        self.preparing = True
        context, reply = self._context_and_reply()

        def work():
            count = self._counter()
            room = message_room(context, reply, sum(count(m.content) for m in history))
            budget = room - count(docs.build_prompt(text, [docs.Source(1, "x", "")]))   # the instructions, the question
            extra = []
            if use_folders:
                share = min(KNOWLEDGE_MAX_TOKENS, budget // (KNOWLEDGE_SHARE if attachments else 2))
                with self._index_lock:
                    extra = docs.retrieve_knowledge(self._index, text, share, count, embedder=self.embedder)
            readable = [a for a in attachments if a.chip.mode != "failed"]
            if sum(a.chip.tokens + 16 for a in readable) + _cost(extra, count) > budget:
                budget = min(budget, RETRIEVED_MAX_TOKENS)   # passages then: a few of the best
            # The sources' headings (file names, pages) are estimated: count the prompt made, and
            # make it again with less room while it is too long.
            for _attempt in range(4):
                prepared = docs.prepare_attachments(attachments, text, max(0, budget - _cost(extra, count)), count,
                                                    extra_sources=extra)
                over = count(prepared.prompt) - room
                if over <= 0:
                    return prepared
                budget -= over + 32
                if extra and budget - _cost(extra, count) < budget // 2:
                    extra = extra[:-1]   # knowledge passages give way first when files leave no room
            raise ValueError(self.tr("the files do not fit in the model's context"))

        def done(prepared: docs.PreparedAttachments | None, error: Exception | None) -> None:
            self.preparing = False
            if self._closed:
                return
            if error is not None or prepared is None or self.window.replies.busy:
                if edit_of is None:
                    self._give_back(text, attachments)
                if error is not None:
                    self.window.notices.show_notice("attach-error", self.tr(
                        "Your message could not be prepared with its documents: {error}. It is back in the "
                        "box.").format(error=error), "warning")
                return
            meta = UserMeta(knowledge=use_folders, attachments=[record_of(a) for a in attachments])
            if prepared.sources:
                meta.prompt = prepared.prompt
                meta.sources = [s.to_dict() for s in prepared.sources]
            self.window.post_message(chat, text, meta, edit_of=edit_of)

        self.window.jobs.run(work, done)
        return True

    def _give_back(self, text: str, attachments: list[docs.Attachment]) -> None:
        """A message that could not be sent: its text and files go back to the composer."""
        bar = self.window.input_bar
        if not bar.input.toPlainText().strip():
            bar.input.setPlainText(text)
        for attachment in attachments:
            self._add(attachment)

    def _context_and_reply(self) -> tuple[int, int]:
        loaded = self.window.model_controller.loaded
        context = loaded.context_length if loaded is not None and loaded.context_length else 4096
        return context, int(self.window.sampling_for_reply().get("max_new_tokens") or 0)

    def reply_meta(self, chat: Chat, user_id: str) -> ReplyMeta | None:
        """The reply to a message sent with sources keeps them (its [n] link to them)."""
        message = chat.messages.get(user_id)
        sources = message.meta.sources if message is not None else None
        return ReplyMeta(sources=list(sources)) if sources else None

    # -- the per-chat switch ---------------------------------------------------------------
    def chat_shown(self, chat: Chat | None) -> None:
        self._update_toggle()
        self.knowledge_toggle.blockSignals(True)
        self.knowledge_toggle.setChecked(self.use_folders(chat))
        self.knowledge_toggle.blockSignals(False)

    def _on_toggle(self, on: bool) -> None:
        chat = self.window.current
        if chat is not None:
            self._use_folders[chat.id] = on

    def _update_toggle(self) -> None:
        """Shown once there are knowledge folders."""
        index = self._index if self._index is not None else (
            self._open_index() if docs.default_index_path().exists() else None)
        self.knowledge_toggle.setVisible(index is not None and bool(self.folders()))

    # -- knowledge folders -----------------------------------------------------------------
    def _open_index(self) -> docs.KnowledgeIndex | None:
        if self._closed:     # (an indexer's last signal may arrive after the window closed the index)
            return None
        if self._index is None and self.index_error is None:
            try:
                self._index = docs.KnowledgeIndex(docs.default_index_path())
            except (docs.IndexUnusable, OSError) as error:
                self.index_error = str(error)
        return self._index

    def folders(self) -> list[docs.Folder]:
        index = self._open_index()
        if index is None:
            return []
        with self._index_lock:
            return index.folders()

    def file_statuses(self, folder_id: int) -> list[docs.FileStatus]:
        index = self._open_index()
        if index is None:
            return []
        with self._index_lock:
            return index.file_statuses(folder_id)

    def add_folder(self, path: str) -> docs.Folder | None:
        index = self._open_index()
        if index is None:
            return None
        with self._index_lock:
            folder = index.add_folder(path)
        chat = self.window.current
        if chat is not None:   # added to be used: the open chat uses it
            self._use_folders[chat.id] = True
        self.chat_shown(chat)
        self.start_indexing()
        return folder

    def remove_folder(self, folder_id: int) -> None:
        index = self._open_index()
        if index is None:
            return
        if self.job is not None and not self.job.finished:
            self.job.cancel()
            self.job.wait(10)
        with self._index_lock:
            index.remove_folder(folder_id)
        self._update_toggle()
        self.start_indexing()

    def indexing(self) -> bool:
        return self.job is not None and not self.job.finished

    def start_indexing(self, folder_ids: list[int] | None = None) -> bool:
        """Bring the index up to date with the folders (only changed files are read again), all
        of them or those given; with an embedding model chosen, chunks without its vectors get them."""
        if self._closed or self.indexing() or self._open_index() is None or not self.folders():
            return False
        self.job = docs.IndexJob(docs.default_index_path(), folder_ids=folder_ids, embedder=self.embedder,
                                 on_progress=self.index_progress.emit, on_finished=self.index_finished.emit,
                                 separate_reader=self.separate_reader).start()
        return True

    def _on_folders_changed(self, folder_ids: list[int]) -> None:
        """The watch saw changes: index those folders now, or once the running job is done."""
        if self.indexing():
            self._waiting_folders.update(folder_ids)
        else:
            self.start_indexing(folder_ids)

    def _watch_folders(self) -> None:
        """Watch the folders as they are now (their subfolders found off the GUI thread)."""
        def work():
            with self._index_lock:
                folders = self._index.folders() if self._index is not None else []
                files = [p for f in folders for p in self._index.file_paths(f.id)]
            pairs = [(f.id, f.path) for f in folders]
            return pairs, watch_paths(pairs, files)

        def done(result, error) -> None:
            if error is None and result is not None and not self._closed:
                self.watch.watch(*result)
        self.window.jobs.run(work, done)

    # -- the embedding model ---------------------------------------------------------------
    def embedding_models(self) -> list[tuple[str, str]]:
        """(name, path) of the embedding models installed (catalog ones), and the chosen one."""
        from chatgui.models.library import installed_models

        found = [(m.entry.name, str(m.path)) for m in installed_models() if m.entry is not None
                 and m.entry.is_embedding]
        chosen = self.window.settings.knowledge_model
        if chosen and all(path != chosen for _name, path in found):
            found.append((Path(chosen).name, chosen))
        return found

    def set_embedding_model(self, path: str | None) -> None:
        """Search the folders with this embedding model (None: by their words only); the
        indexer gives the chunks already indexed their vectors."""
        if (path or None) == self.window.settings.knowledge_model:
            return
        self.window.settings.knowledge_model = path or None
        if self.window.autosave is not None:
            self.window.autosave.schedule()
        self.embedder = LazyEmbedder(path) if path else None
        if self.indexing():       # the running job has the old model: stop it, go on with the new one
            self.job.cancel()
            self._waiting_folders.update(f.id for f in self.folders())
        else:
            self.start_indexing()

    def pause_indexing(self, paused: bool) -> None:
        if self.job is not None:
            self.job.pause() if paused else self.job.resume()

    def _on_index_finished(self, summary) -> None:
        self.last_summary = summary
        if self._closed:
            return
        self._update_toggle()
        self._watch_folders()
        if self._waiting_folders:     # changes seen (or a model chosen) while it ran
            waiting, self._waiting_folders = sorted(self._waiting_folders), set()
            self.start_indexing(waiting)

    def open_page(self):
        from chatgui.ui.documents.knowledge_page import KnowledgePage
        if self.page is None:
            self.page = KnowledgePage(self, self.window)
        self.page.refresh()
        self.page.show()
        self.page.raise_()
        return self.page

    def shutdown(self) -> None:
        """Closing: the indexer stops between two files, the reader child ends."""
        self._closed = True
        self.watch.stop()
        if self.job is not None:
            self.job.cancel()
            self.job.wait(5)
        if self._reader_lock.acquire(timeout=1):
            try:
                if self._reader is not None:
                    self._reader.close()
            finally:
                self._reader_lock.release()
        elif self._reader is not None:   # a file still being read (up to its time limit): no waiting for it
            self._reader.close(kill=True)
        if self._index is not None:
            with self._index_lock:
                self._index.close()


def _dropped_files(mime) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    urls = mime.urls()
    return [u.toLocalFile() for u in urls if u.isLocalFile() and Path(u.toLocalFile()).is_file()]

"""The chats of this session: what is on disk plus what is in memory.

Every chat opened or created is kept in memory, so a chat whose save failed is not lost; it is
saved again with the next save of any chat. Saving never waits on the disk: the store's writer
thread writes, and says how it went through a queued signal. Trouble with files is shown in the
window (a notice), never in a dialog.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, Signal

from chatgui.store import DatabaseUnusable, HistoryStore, StoreError, StoreProblem
from chatgui.session import Chat

TRASH_DAYS = 30   # how long a deleted chat can be restored

from chatgui.ui.common.i18n import translate
from chatgui.ui.common.notices import NoticeArea
from chatgui.ui.common.status_bar import StatusBar


def title_of(chat: Chat) -> str:
    return chat.title or chat.title_from_first_message() or translate("ChatListPanel", "New chat")


class _SaveResults(QObject):
    saved = Signal(str, object)   # chat id, StoreError or None: emitted on the writer thread


class ChatLibrary:
    def __init__(self, store: HistoryStore, notices: NoticeArea, status: StatusBar,
                 problems: list[StoreProblem] | None = None):
        self.store, self.notices, self.status = store, notices, status
        self._results = _SaveResults()
        self._results.saved.connect(self._on_saved)   # delivered on the GUI thread
        self.chats: dict[str, Chat] = {}
        self.unsaved: set[str] = set()          # ids of chats whose last save failed
        self._pending_problems = list(problems or [])   # e.g. from loading the settings
        # Says what is wrong with a database that cannot be used and offers its backup (history_actions).
        self.unusable_handler: Callable[[DatabaseUnusable], None] | None = None

    def add(self, chat: Chat) -> None:
        self.chats[chat.id] = chat

    def get(self, chat_id: str, report: bool = True) -> Chat | None:
        chat = self.chats.get(chat_id)
        if chat is None:
            try:
                chat = self.store.load(chat_id, tokens=False)   # token records: read when shown
            except StoreError as e:
                if report:
                    self.notices.show_notice("open-error", str(e), "error")
                self.report_problems()
                return None
            self.chats[chat_id] = chat
        return chat

    def forget(self, chat_id: str) -> None:
        self.chats.pop(chat_id, None)
        self.unsaved.discard(chat_id)

    def delete(self, chat_id: str) -> bool:
        """Move the chat to the trash (restorable for TRASH_DAYS); an empty, never-saved chat just goes."""
        chat = self.chats.get(chat_id)
        try:
            if chat is not None and chat.messages:
                self.store.save(chat)      # what is in memory is what the trash keeps
            if self.store.exists(chat_id):
                self.store.trash(chat_id)
        except StoreError as e:
            self.notices.show_notice("delete-error", str(e), "error")
            return False
        self.forget(chat_id)
        return True

    def restore(self, chat_id: str) -> bool:
        try:
            self.store.restore(chat_id)
        except StoreError as e:
            self.notices.show_notice("delete-error", str(e), "error")
            return False
        return True

    def empty_old_trash(self) -> None:
        """Chats deleted more than TRASH_DAYS ago are gone for good (at start)."""
        try:
            self.store.empty_trash(older_than_days=TRASH_DAYS)
        except StoreError as e:
            self.notices.show_notice("delete-error", str(e), "error")

    def save(self, chat: Chat) -> bool:
        """Queue `chat` for saving, and every chat whose save failed before; False if it could not
        even be queued. How the writing went arrives later (_on_saved)."""
        ok = True
        retries = [self.chats[i] for i in list(self.unsaved) if i in self.chats and i != chat.id]
        for target in [chat, *retries]:
            try:
                self.store.save_async(target, self._results.saved.emit)
            except StoreError as e:
                ok = False
                self._on_saved(target.id, e)
        return ok

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued save is written (closing the window, tests)."""
        return self.store.flush(timeout)

    def _on_saved(self, chat_id: str, error: StoreError | None) -> None:
        if error is None:
            self.unsaved.discard(chat_id)
        else:
            self.unsaved.add(chat_id)
            self.notices.show_notice("save-error", translate(
                "ChatLibrary", "{error} The chat stays open here and saving will be tried again with the "
                "next change.").format(error=error), "error")
            self.status.showMessage(translate("ChatLibrary", "Saving failed."), 5000)
        if not self.unsaved:
            self.notices.remove("save-error")

    def entries(self, query: str, current: Chat | None, matching: set[str] | None = None
                ) -> list[tuple[str, str, float]]:
        """(id, title, updated) of the chats to list, newest first. With a `query`, only those in
        `matching` (what the store's search found, see MainWindow.search_chats) or whose title in
        memory contains it. Chats in memory win over their rows: they may be newer."""
        try:
            summaries = self.store.list_chats()
        except StoreError as e:
            self.report_store_error(e, "list-error")
            summaries = []
        entries = {s.id: (s.id, s.title, s.updated) for s in summaries}
        for chat in self.chats.values():
            if chat.messages or chat is current:
                entries[chat.id] = (chat.id, title_of(chat) if chat.messages else "", chat.updated)
        if query:
            needle, matching = query.casefold(), matching or set()
            entries = {k: v for k, v in entries.items()
                       if k in matching or (k in self.chats and needle in title_of(self.chats[k]).casefold())}
        self.report_problems()
        return sorted(entries.values(), key=lambda e: e[2], reverse=True)

    def report_store_error(self, error: Exception, key: str) -> None:
        """A database that cannot be used gets its own handling (what is wrong, the backup);
        other trouble is a notice."""
        if isinstance(error, DatabaseUnusable) and self.unusable_handler is not None:
            self.unusable_handler(error)
        else:
            self.notices.show_notice(key, str(error), "error")

    def report_problems(self) -> None:
        """Show files the store could not use, each once, in one notice."""
        problems = self._pending_problems + self.store.take_problems()
        self._pending_problems = []
        if not problems:
            return
        old = self.notices.get("store-problems")
        lines = ([old.text()] if old else [translate("ChatLibrary", "Some files could not be used:")]) + [
            f"• {p}" for p in problems]
        self.notices.show_notice("store-problems", "\n".join(lines), "warning")

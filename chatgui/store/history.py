"""Chat history: one SQLite database (`history.sqlite3`) in the data folder.

- Start-up reads only the chat list (titles and dates); a chat's messages are read when it is
  opened, its per-token records with it or later (`load(..., tokens=False)`, `load_tokens`).
- Saving writes only what changed (a streamed reply: its row). `save_async` hands a snapshot to
  the store's writer thread and returns at once; `save` writes before returning; `flush` waits
  for queued saves, `close` flushes and stops the writer.
- The database is checked when first used, read-only (header, -wal, size, quick_check, version:
  database.check_database); a database that cannot be trusted raises DatabaseUnusable (a
  StoreError) listing the backups that could replace it, and is never written to. Other errors
  (a full disk, a search query SQLite cannot parse) are plain StoreErrors. A backup is taken once
  a day (the newest 3 kept, by their recorded time).
- Chat files of the old one-file-per-chat layout (`chats/<id>.json`) are imported when found,
  then moved to `chats/migrated/`; damaged ones are quarantined as `.corrupt` and reported.
  With `migrate_later=True` opening does not wait for them: `migrate_legacy` imports them in
  batches (the window runs it on a thread and lists the chats as they arrive).
"""
from __future__ import annotations

import re
import sqlite3
import time
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chatgui.common import paths
from . import backup, importers
from chatgui.session import ROLES, ROOT, Chat, Message, Role, meta_from_dict
from .database import DB_NAME, classify, connect, error_kind, open_database
from .errors import StoreError, StoreProblem
from .export import EXPORT_FORMATS, ExportFormat, export_format, export_json, export_markdown
from .legacy import MAX_CHAT_FILE_BYTES
from .migrate import legacy_files, migrate_folder
from .rows import TOKENS_KEY, from_json, py_text, snapshot, unpack_tokens
from .writer import UNKNOWN, ChatWriter, Row, signature_from_db

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A short query in more messages than this share (estimated from the index) is found by a scan
# that stops at each chat's first match: most chats then match within their first messages.
_SCAN_ABOVE = 0.3
_LEGACY_FOLDER = "chats"


@dataclass(frozen=True)
class ChatSummary:
    id: str
    title: str          # the chat's title, or one made from its first message ("" if none)
    updated: float      # epoch seconds
    path: Path          # the database holding it


class HistoryStore:
    export_markdown = staticmethod(export_markdown)
    export_json = staticmethod(export_json)

    def __init__(self, folder: Path | str | None = None, *, max_file_bytes: int = MAX_CHAT_FILE_BYTES,
                 backups: bool = True, migrate_later: bool = False):
        """`folder`: the data folder (default: paths.data_dir(), i.e. CHATGUI_DATA_DIR). Nothing
        is read or created until the first use. migrate_later: opening leaves the old layout's
        chat files to migrate_legacy (else the first use imports them before it returns)."""
        self.folder = Path(folder) if folder is not None else paths.data_dir()
        self.db_path = self.folder / DB_NAME
        self.dir = self.folder / _LEGACY_FOLDER      # the old layout's chat files, if any
        self.max_file_bytes = max_file_bytes         # the largest JSON file migration/import reads
        self.problems: list[StoreProblem] = []       # new ones are appended; see take_problems()
        self._backups_enabled = backups
        self._open_lock = threading.Lock()
        self._writer: ChatWriter | None = None
        self._local = threading.local()              # one read connection per thread
        self._readers: list[sqlite3.Connection] = []
        self._backup_thread: threading.Thread | None = None
        self._retired = False                        # see retire()
        self._migrate_later = migrate_later

    def take_problems(self) -> list[StoreProblem]:
        """Return the problems not yet taken and forget them (the UI shows each once)."""
        taken, self.problems = self.problems, []
        return taken

    # ---- opening -------------------------------------------------------------------------

    def open(self) -> None:
        """Open and check the database now (the first use does it otherwise); raises
        DatabaseUnusable, or StoreError when the folder cannot be created."""
        self._w()

    def _w(self) -> ChatWriter:
        if self._writer is not None:
            return self._writer
        if self._retired:
            raise StoreError("The chat database is being replaced.", self.db_path)
        with self._open_lock:
            if self._writer is None:
                try:
                    self.folder.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise StoreError.wrap("Could not create the data folder", self.folder, err) from err
                conn = open_database(self.db_path, backup.list_backups(self.folder))
                writer = ChatWriter(conn, self._describe)
                if not self._migrate_later:
                    _count, problems = migrate_folder(writer, self.dir, self.max_file_bytes)
                    self.problems += problems
                self._writer = writer
                if self._backups_enabled and backup.backup_due(self.folder):
                    self._backup_thread = threading.Thread(target=self._backup_quietly, daemon=True,
                                                           name="chatgui-store-backup")
                    self._backup_thread.start()
        return self._writer

    def legacy_pending(self) -> bool:
        """Are there chat files of the old layout waiting for migrate_legacy?"""
        return bool(legacy_files(self.dir))

    def migrate_legacy(self, on_batch: Callable[[int, int], bool | None] | None = None, batch: int = 100) -> int:
        """Import the old layout's chat files, `batch` per transaction (safe on any thread: each
        batch is one transaction of the writer); returns how many chats were imported. The files
        that cannot be used are added to `problems`. on_batch(done, total) after each batch; if
        it returns True the rest is left for later."""
        count, problems = migrate_folder(self._w(), self.dir, self.max_file_bytes, batch, on_batch)
        self.problems += problems
        return count

    def _r(self) -> sqlite3.Connection:
        """This thread's read connection (WAL: reads never wait for the writer)."""
        if self._retired:
            raise StoreError("The chat database is being replaced.", self.db_path)
        self._w()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.db_path)
            except sqlite3.Error as err:
                raise self._describe(err) from err
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def _describe(self, err: BaseException) -> StoreError:
        """A sentence for what went wrong. Only damage (and a database another program holds)
        is DatabaseUnusable, which the window answers by offering a backup; a full disk or a
        statement SQLite refused leaves the database as good as it was."""
        name = self.db_path.name
        if isinstance(err, sqlite3.Error):
            kind = error_kind(err)
            if kind in ("corrupt", "not_sqlite", "locked"):
                return classify(err, self.db_path, backup.list_backups(self.folder))
            if kind == "full":
                return StoreError(f"Could not save to {name}: the disk is full", self.db_path, err)
            if kind == "nomem":
                return StoreError(f"Could not use {name}: not enough memory", self.db_path, err)
            if "readonly" in str(err).lower():
                return StoreError(f"Could not save to {name}: the folder is read-only", self.db_path, err)
        return StoreError(f"Could not use {name}: {err}", self.db_path, err)

    def _backup_quietly(self) -> None:
        try:
            backup.make_backup(self.db_path, self.folder)
        except StoreError as err:
            self.problems.append(StoreProblem(self.db_path, str(err), "no backup today"))

    def backup_now(self) -> Path:
        self._w()
        return backup.make_backup(self.db_path, self.folder)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued saves are written (True), or `timeout` seconds (False)."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer thread and close the database."""
        if self._writer is not None:
            self._writer.close(timeout)
            try:  # a bounded step of merging the search index's small segments (streamed replies make many)
                self._writer.conn.execute("INSERT INTO message_search(message_search, rank) VALUES ('merge', 500)")
            except sqlite3.Error:
                pass  # only tidying: the next close tries again
            self._writer.conn.close()
            self._writer = None
        if self._backup_thread is not None:
            self._backup_thread.join(timeout)
        for conn in self._readers:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._readers.clear()
        self._local = threading.local()

    def retire(self, timeout: float | None = None) -> None:
        """Close for good: the file is about to be replaced (a backup restored), so a late call
        from another thread must fail instead of opening, or creating, a database there."""
        self._retired = True
        self.close(timeout)

    # ---- the chat list, search ---------------------------------------------------------------

    def list_chats(self) -> list[ChatSummary]:
        """Every chat, newest first: one indexed query, no message read."""
        rows = self._query("SELECT id, list_title, updated FROM chats WHERE id NOT IN (SELECT chat_id FROM trash)"
                           " ORDER BY updated DESC")
        return [ChatSummary(i, py_text(t), u, self.db_path) for i, t, u in rows]

    # ---- the trash: a deleted chat waits TRASH_DAYS before it is gone ------------------------

    def trash(self, chat_id: str) -> None:
        """Delete a chat the undoable way: it leaves the list and search, and stays restorable."""
        self.path_for(chat_id)
        self._w().flush()   # a queued save of it lands first
        self._w().set_trashed(chat_id, time.time())

    def restore(self, chat_id: str) -> None:
        self.path_for(chat_id)
        self._w().set_trashed(chat_id, None)

    def list_trash(self) -> list[tuple[ChatSummary, float]]:
        """(chat, when it was deleted), most recently deleted first."""
        rows = self._query("SELECT c.id, c.list_title, c.updated, t.deleted FROM trash t JOIN chats c ON c.id = t.chat_id"
                           " ORDER BY t.deleted DESC")
        return [(ChatSummary(i, py_text(title), u, self.db_path), d) for i, title, u, d in rows]

    def empty_trash(self, older_than_days: float | None = None) -> list[str]:
        """Delete for good what is in the trash (only what was deleted more than older_than_days
        ago, if given); returns the ids."""
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        return self._w().purge_trash(cutoff)

    def search(self, query: str) -> list[str]:
        """Ids of chats whose title or any message (every branch) contains `query`, ignoring
        case, newest first. Message text is searched through the FTS5 trigram index."""
        needle = query.strip()
        if not needle:
            return [s.id for s in self.list_chats()]
        folded = needle.casefold()
        found = {i for i, t in self._query("SELECT id, list_title FROM chats") if folded in py_text(t).casefold()}
        # FTS5 reads a query as C text: a NUL ends it. Trigrams holding one are left to the exact test.
        trigrams = sorted({t for i in range(len(folded) - 2) if "\0" not in (t := folded[i:i + 3])})
        if trigrams:  # candidates from the trigram index, then the exact substring test
            match = " AND ".join(_quoted(t) for t in trigrams)
            rows = self._search_query("SELECT DISTINCT chat_id FROM messages WHERE rowid IN (SELECT rowid FROM"
                                      " message_search WHERE message_search MATCH ?) AND instr(casefold(content), ?)",
                                      (match, folded))
        else:
            rows = self._search_short(folded)
        found.update(r[0] for r in rows)
        return [s.id for s in self.list_chats() if s.id in found]   # (list_chats leaves the trash out)

    def _search_short(self, folded: str) -> list:
        """Chats holding a query shorter than a trigram (two Chinese characters are a word).

        Two characters: every place they occur is the start of a trigram, or the end of the text.
        The index's terms starting with them (a range of its sorted vocabulary) find the first
        kind, exactly (the index holds the casefolded text); the messages_by_tail index the
        second. When those terms are in most messages, a scan that stops at each chat's first
        match is quicker than collecting every matching message. One character: that scan."""
        conn = self._r()
        scan = ("SELECT id FROM chats c WHERE EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = c.id"
                " AND instr(casefold(m.content), ?))")
        if len(folded) != 2 or "\0" in folded or ord(folded[1]) >= 0x10FFFF:   # (the index holds no NUL)
            return self._search_query(scan, (folded,))
        self._vocabulary(conn)
        above = folded[0] + chr(ord(folded[1]) + 1)
        terms = self._query("SELECT term, doc FROM temp.message_terms WHERE term >= ? AND term < ?", (folded, above))
        messages = self._query("SELECT max(rowid) FROM messages")[0][0] or 0
        if sum(doc for _t, doc in terms) > messages * _SCAN_ABOVE:
            return self._search_query(scan, (folded,))
        rows = self._query("SELECT DISTINCT chat_id FROM messages WHERE substr(casefold(content), -2) = ?", (folded,))
        if terms:
            match = " OR ".join(_quoted(t) for t, _doc in terms)
            rows += self._search_query("SELECT DISTINCT m.chat_id FROM message_search s JOIN messages m"
                                       " ON m.rowid = s.rowid WHERE message_search MATCH ?", (match,))
        return rows

    def _vocabulary(self, conn: sqlite3.Connection) -> None:
        """The trigram index's terms, as a table (in this connection's temp schema: nothing is
        added to the database)."""
        if not getattr(self._local, "vocabulary", False):
            try:
                conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.message_terms"
                             " USING fts5vocab(main, message_search, 'row')")
            except sqlite3.Error as err:
                raise self._describe(err) from err
            self._local.vocabulary = True

    def _search_query(self, sql: str, args: tuple) -> list:
        """A search's query: one SQLite cannot parse is the query's fault, not the database's."""
        try:
            return self._r().execute(sql, args).fetchall()
        except sqlite3.Error as err:
            if error_kind(err) == "other":
                raise StoreError(f"The search could not understand the query ({err}).", self.db_path, err) from err
            raise self._describe(err) from err

    def _query(self, sql: str, args: tuple = ()) -> list:
        try:
            return self._r().execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise self._describe(err) from err

    # ---- one chat --------------------------------------------------------------------------

    def exists(self, chat_id: str) -> bool:
        self.path_for(chat_id)
        return bool(self._query("SELECT 1 FROM chats WHERE id=?", (chat_id,)))

    def load(self, chat_id: str, tokens: bool = True) -> Chat:
        """The whole chat. `tokens=False` leaves the per-token records on disk (no "token_data"
        in any meta; saving such a chat keeps them): fetch them with load_tokens when shown."""
        self.path_for(chat_id)
        writer = self._w()
        if writer.pending(chat_id):
            writer.flush()  # a queued save of this chat is newer than the database
        try:
            chat = self._read_chat(chat_id, tokens)
        except sqlite3.Error as err:
            raise self._describe(err) from err
        if chat is None:
            raise StoreError(f"The chat {chat_id} no longer exists.", self.db_path)
        if not tokens:
            chat.token_loader = lambda message_id: self.load_tokens(chat_id, message_id)
        return chat

    def load_tokens(self, chat_id: str, message_id: str) -> list:
        """A reply's per-token records ([] if it has none)."""
        rows = self._query("SELECT t.data FROM token_records t JOIN messages m ON m.rowid = t.message_rowid"
                           " WHERE m.chat_id=? AND m.id=?", (chat_id, message_id))
        return unpack_tokens(rows[0][0]) if rows else []

    def save(self, chat: Chat) -> None:
        """Write the chat before returning. Raises StoreError (the database unchanged) on failure."""
        self.path_for(chat.id)
        snap = snapshot(chat)
        writer = self._w()
        superseded = writer.drop_pending(chat.id)
        error = None
        try:
            writer.write(snap)
        except StoreError as err:
            error = err
            raise
        finally:
            for callback in superseded:
                callback(chat.id, error)

    def save_async(self, chat: Chat, on_done: Callable[[str, StoreError | None], None] | None = None) -> None:
        """Queue the chat for the writer thread and return at once (the caller's thread only takes
        a snapshot). `on_done(chat_id, error_or_None)` runs on the writer thread; without it, a
        failure is added to `problems`."""
        self.path_for(chat.id)
        self._w().submit(snapshot(chat), on_done or self._report_async_failure)

    def _report_async_failure(self, chat_id: str, error: StoreError | None) -> None:
        if error is not None:
            self.problems.append(StoreProblem(self.db_path, str(error), f"chat {chat_id} not saved"))

    def delete(self, chat_id: str) -> None:
        self.path_for(chat_id)
        self._w().delete(chat_id)

    def path_for(self, chat_id: str) -> Path:
        """Where the chat is kept (the database); raises StoreError for an invalid id."""
        if not isinstance(chat_id, str) or not _ID_RE.fullmatch(chat_id):
            raise StoreError(f"Invalid chat id {chat_id!r}.")
        return self.db_path

    def _read_chat(self, chat_id: str, with_tokens: bool) -> Chat | None:
        conn = self._r()
        conn.execute("BEGIN")  # one snapshot of the database for all the reads below
        try:
            head = conn.execute("SELECT title, created, updated, system_prompt, settings, selected_root, revision"
                                " FROM chats WHERE id=?", (chat_id,)).fetchone()
            if head is None:
                return None
            rows = conn.execute("SELECT rowid, id, seq, parent_id, selected_child, role, content, created, meta"
                                " FROM messages WHERE chat_id=? ORDER BY seq, rowid", (chat_id,)).fetchall()
            token_rows = dict(conn.execute(
                "SELECT t.message_rowid, t.data FROM token_records t JOIN messages m ON m.rowid = t.message_rowid"
                " WHERE m.chat_id=?", (chat_id,)).fetchall()) if with_tokens else {}
        finally:
            conn.execute("COMMIT")
        title, created, updated, system_prompt, settings, selected_root, revision = head
        chat = Chat(id=chat_id, title=py_text(title), created=created, updated=updated,
                    system_prompt=py_text(system_prompt) if system_prompt is not None else None)
        if selected_root:
            chat.selected[ROOT] = selected_root
        cache, next_seq = {}, 0
        for rowid, mid, seq, parent, selected_child, role, content, mcreated, meta in rows:
            meta_dict = from_json(py_text(meta), {})
            tokens = None
            if rowid in token_rows:
                tokens = unpack_tokens(token_rows[rowid])
                meta_dict[TOKENS_KEY] = tokens
            if role not in ROLES:   # only a damaged or foreign database has one
                raise StoreError(f"The chat {chat_id} has a message of an unknown role ({role!r}).", self.db_path)
            chat.messages[mid] = Message(mid, Role(role), py_text(content), mcreated, parent,
                                         meta_from_dict(role, meta_dict))
            if selected_child:
                chat.selected[mid] = selected_child
            sig = signature_from_db([parent, selected_child, role, content, mcreated, meta])
            cache[mid] = Row(rowid, sig, tokens if with_tokens else UNKNOWN)
            next_seq = max(next_seq, seq + 1)
        # The writer compares the next save of this chat against these rows instead of reading them.
        row = (chat.title, None, chat.created, chat.updated, chat.system_prompt, settings, selected_root)
        self._w().prime(chat_id, revision, row, cache, next_seq)
        return chat

    # ---- import and export (plain functions of the store; run them off the GUI thread) --------

    def import_file(self, path: Path | str, cancel=None, same_title: str | None = None) -> list[str]:
        """Import a chatgui JSON export or ChatGPT's conversations.json; returns the new chat ids.
        Raises StoreError (nothing imported) if the file is not one of those, or ImportCancelled
        if `cancel` (a threading.Event) is set before the chats are written. same_title: a
        format string ("{title} (imported)") for an imported chat whose title another chat has."""
        chats = importers.read_import(Path(path), self.max_file_bytes, cancel)
        taken, titles = set(), set()
        for chat_id, title in self._query("SELECT id, list_title FROM chats"):
            taken.add(chat_id)
            titles.add(py_text(title))
        for chat in chats:
            if chat.id in taken or not _ID_RE.fullmatch(chat.id):
                chat.id = importers.fresh_id()  # never replace a chat that is already here
            taken.add(chat.id)
            title = chat.title or chat.title_from_first_message()
            if same_title and title in titles:  # two chats in the list that look the same: tell them apart
                chat.title = same_title.format(title=title)
            titles.add(chat.title or title)
        return [c.id for c in self._w().write_new(chats)]

    def export_to_file(self, chat_id: str, path: Path | str, kind: ExportFormat | str = ExportFormat.JSON) -> None:
        """Write a chat in an export format (export.EXPORT_FORMATS) to `path`, reading it from the
        database (so a worker thread can do it while the GUI goes on changing its copy).
        ValueError for an unknown format, before anything is read or written."""
        from .atomic import atomic_write_text
        spec = EXPORT_FORMATS[export_format(kind)]
        chat = self.load(chat_id, tokens=False)
        packed: dict[str, bytes] = {}
        if spec.uses_token_records:   # they go out as the database packed them: nothing to decode
            packed = dict(self._query("SELECT m.id, t.data FROM token_records t JOIN messages m"
                                      " ON m.rowid = t.message_rowid WHERE m.chat_id=?", (chat_id,)))
        atomic_write_text(path, spec.write(chat, packed))


def _quoted(term: str) -> str:
    """A term as an FTS5 string: its quotes are text, not query syntax."""
    return '"' + term.replace('"', '""') + '"'

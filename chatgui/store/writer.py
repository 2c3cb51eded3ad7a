"""The store's single writer: every change to the database goes through one connection, in
order, on one thread (or on the caller's, for a synchronous save).

A save compares the chat with what this writer last wrote and touches only the rows that
changed: saving a streamed reply updates that reply's row (and its token records), not the chat.
Saves queued for the same chat are coalesced: only the newest snapshot is written.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Callable

from chatgui.common.records import ReplyMeta
from chatgui.session import Chat
from .database import write_transaction
from .errors import StoreError
from .rows import (Snapshot, chat_row, db_text, message_signature, meta_without_tokens, pack_tokens,
                   py_text)

UNKNOWN = object()  # token records on disk that this writer has not seen


@dataclass
class Row:
    rowid: int
    signature: tuple
    tokens: object = UNKNOWN  # the list last written (shared records, compared cheaply), or UNKNOWN
    meta: dict | None = None  # the meta last written (without token records), when known


@dataclass
class _Written:
    """What the database holds for one chat, as far as this writer knows."""
    revision: int
    chat_row: tuple | None
    rows: dict[str, Row] = field(default_factory=dict)
    next_seq: int = 0


class ChatWriter:
    def __init__(self, conn: sqlite3.Connection, describe: Callable[[BaseException], StoreError]):
        self.conn = conn
        self.describe = describe      # sqlite3 error -> StoreError with a sentence for the user
        self.lock = threading.RLock()  # held while writing: one transaction at a time
        self._written: dict[str, _Written] = {}
        self._pending: dict[str, tuple[Snapshot, list]] = {}   # chat id -> (snapshot, callbacks)
        self._wake = threading.Condition()
        self._busy = 0                   # snapshots taken off the queue and not yet written
        self._thread: threading.Thread | None = None
        self._closing = False

    # ---- asynchronous ------------------------------------------------------------------------

    def submit(self, snap: Snapshot, on_done: Callable | None) -> None:
        with self._wake:
            if self._closing:
                raise StoreError("The chat store is closed.")
            _old, callbacks = self._pending.pop(snap.id, (None, []))
            self._pending[snap.id] = (snap, callbacks + ([on_done] if on_done else []))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="chatgui-store-writer", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def drop_pending(self, chat_id: str) -> list:
        """Forget a queued save of this chat (a newer one follows); returns its callbacks."""
        with self._wake:
            _snap, callbacks = self._pending.pop(chat_id, (None, []))
            return callbacks

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued save is written; False if `timeout` passed first."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._busy, timeout)

    def pending(self, chat_id: str) -> bool:
        with self._wake:
            return chat_id in self._pending

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return  # closing and nothing left
                chat_id = next(iter(self._pending))
                snap, callbacks = self._pending.pop(chat_id)
                self._busy += 1
            error = None
            try:
                self.write(snap)
            except StoreError as err:
                error = err
            except Exception as err:  # never let the writer thread die: report and go on
                error = StoreError(f"Could not save the chat: {err}")
            finally:
                with self._wake:
                    self._busy -= 1
                    self._wake.notify_all()
            for callback in callbacks:
                try:
                    callback(chat_id, error)
                except Exception:
                    pass  # a caller's bug must not stop the saving of other chats

    # ---- the write itself ------------------------------------------------------------------

    def write(self, snap: Chat | Snapshot) -> None:
        """Write a snapshot (or a chat no other thread changes) now, in one transaction."""
        if isinstance(snap, Snapshot):
            snap = snap.chat()
        with self.lock:
            try:
                with write_transaction(self.conn):
                    written = self._write_rows(snap)
            except sqlite3.Error as err:
                self._written.pop(snap.id, None)  # unsure what is on disk now: re-read next time
                raise self.describe(err) from err
            self._written[snap.id] = written

    def write_new(self, chats: list[Chat]) -> list[Chat]:
        """Write the chats whose ids the database does not have yet, all in one transaction;
        returns those written (the migration and import use this)."""
        with self.lock:
            done, written = [], {}
            try:
                with write_transaction(self.conn):
                    for chat in chats:
                        if self.conn.execute("SELECT 1 FROM chats WHERE id=?", (chat.id,)).fetchone() is None:
                            written[chat.id] = self._write_rows(chat)
                            done.append(chat)
            except sqlite3.Error as err:
                raise self.describe(err) from err
            self._written.update(written)
            return done

    def delete(self, chat_id: str) -> None:
        with self.lock:
            self.drop_pending(chat_id)
            self._written.pop(chat_id, None)
            try:
                self.conn.execute("DELETE FROM chats WHERE id=?", (chat_id,))
            except sqlite3.Error as err:
                raise self.describe(err) from err

    def set_trashed(self, chat_id: str, when: float | None) -> None:
        """Put a chat in the trash (when: the time it was deleted) or take it out (None)."""
        with self.lock:
            try:
                if when is None:
                    self.conn.execute("DELETE FROM trash WHERE chat_id=?", (chat_id,))
                else:
                    self.conn.execute("INSERT OR REPLACE INTO trash(chat_id, deleted) VALUES (?, ?)", (chat_id, when))
            except sqlite3.Error as err:
                raise self.describe(err) from err

    def purge_trash(self, older_than: float | None) -> list[str]:
        """Delete for good the trashed chats deleted before `older_than` (None: all of them)."""
        with self.lock:
            try:
                ids = [r[0] for r in self.conn.execute(
                    "SELECT chat_id FROM trash WHERE ? IS NULL OR deleted < ?", (older_than, older_than))]
                for chat_id in ids:
                    self._written.pop(chat_id, None)
                    self.conn.execute("DELETE FROM chats WHERE id=?", (chat_id,))
                return ids
            except sqlite3.Error as err:
                raise self.describe(err) from err

    def forget(self, chat_id: str) -> None:
        with self.lock:
            self._written.pop(chat_id, None)

    def prime(self, chat_id: str, revision: int, row: tuple, rows: dict[str, Row], next_seq: int) -> None:
        """What a load just read, so the next save of that chat compares against it."""
        with self.lock:
            if chat_id not in self._written:
                self._written[chat_id] = _Written(revision, row, rows, next_seq)

    def _cached(self, chat_id: str) -> _Written:
        found = self.conn.execute("SELECT revision FROM chats WHERE id=?", (chat_id,)).fetchone()
        if found is None:
            return _Written(-1, None)
        written = self._written.get(chat_id)
        if written is not None and written.revision == found[0]:
            return written
        return read_written(self.conn, chat_id, found[0])  # another store wrote it: start from disk

    def _write_rows(self, snap: Chat) -> _Written:
        old = self._cached(snap.id)
        row_values = chat_row(snap)
        new = _Written(old.revision + 1, row_values, {}, old.next_seq)
        c = self.conn
        if old.chat_row is None:
            c.execute("INSERT INTO chats(id, title, list_title, created, updated, system_prompt, settings,"
                      " selected_root, revision) VALUES (?,?,?,?,?,?,?,?,?)",
                      (snap.id, *map(_param, row_values), new.revision))
        elif old.chat_row != new.chat_row:
            c.execute("UPDATE chats SET title=?, list_title=?, created=?, updated=?, system_prompt=?, settings=?,"
                      " selected_root=?, revision=? WHERE id=?", (*map(_param, row_values), new.revision, snap.id))
        else:
            c.execute("UPDATE chats SET revision=? WHERE id=?", (new.revision, snap.id))
        for mid, m in snap.messages.items():
            before = old.rows.get(mid)
            meta = meta_without_tokens(m.meta)
            fields = (m.parent_id, snap.selected.get(mid), m.role.value, m.content, m.created)
            if before is not None and before.meta is not None and before.signature[:5] == fields \
                    and before.meta == meta:
                sig = before.signature  # unchanged: no need to encode its meta again
            else:
                sig = message_signature(m, snap.selected.get(mid), meta)
            if before is None:
                cur = c.execute("INSERT INTO messages(chat_id, id, seq, parent_id, selected_child, role, content,"
                                " created, meta) VALUES (?,?,?,?,?,?,?,?,?)",
                                (snap.id, mid, new.next_seq, *map(_param, sig)))
                new.next_seq += 1
                row = Row(int(cur.lastrowid or 0), sig, None)   # (an INSERT always sets it)
            else:
                row = Row(before.rowid, sig, before.tokens)
                if before.signature != sig:
                    c.execute("UPDATE messages SET parent_id=?, selected_child=?, role=?, content=?, created=?,"
                              " meta=? WHERE rowid=?", (*map(_param, sig), row.rowid))
            tokens = m.meta.token_data if isinstance(m.meta, ReplyMeta) and m.meta.token_data is not None else UNKNOWN
            # Absent token records mean "not loaded", never "deleted": what is on disk stays.
            if tokens is not UNKNOWN and (row.tokens is UNKNOWN or row.tokens != tokens):
                if isinstance(tokens, list) and tokens:
                    c.execute("INSERT OR REPLACE INTO token_records(message_rowid, count, data) VALUES (?,?,?)",
                              (row.rowid, len(tokens), pack_tokens(tokens)))
                elif row.tokens is not None:
                    c.execute("DELETE FROM token_records WHERE message_rowid=?", (row.rowid,))
                row.tokens = tokens if isinstance(tokens, list) and tokens else None
            row.meta = meta
            new.rows[mid] = row
        gone = [(r.rowid,) for mid, r in old.rows.items() if mid not in snap.messages]
        if gone:
            c.executemany("DELETE FROM messages WHERE rowid=?", gone)
        return new


def read_written(conn: sqlite3.Connection, chat_id: str, revision: int) -> _Written:
    """What the database holds for a chat, in the writer's terms (token records not read)."""
    head = conn.execute("SELECT title, list_title, created, updated, system_prompt, settings, selected_root"
                        " FROM chats WHERE id=?", (chat_id,)).fetchone()
    written = _Written(revision, tuple(head) if head else None)
    has_tokens = {r[0] for r in conn.execute(
        "SELECT t.message_rowid FROM token_records t JOIN messages m ON m.rowid = t.message_rowid"
        " WHERE m.chat_id=?", (chat_id,))}
    for rowid, mid, seq, *sig in conn.execute(
            "SELECT rowid, id, seq, parent_id, selected_child, role, content, created, meta FROM messages"
            " WHERE chat_id=?", (chat_id,)):
        written.rows[mid] = Row(rowid, signature_from_db(sig), UNKNOWN if rowid in has_tokens else None)
        written.next_seq = max(written.next_seq, seq + 1)
    return written


def signature_from_db(sig: list) -> tuple:
    parent, selected, role, content, created, meta = sig
    return (parent, selected, role, py_text(content), created, py_text(meta))


def _param(value):
    return db_text(value) if isinstance(value, str) else value

"""The chat database: one SQLite file (WAL mode) in the data folder.

Tables: `chats` (one row per chat: what the chat list shows, its system prompt),
`messages` (the tree: parent, the selected child, text, metadata as JSON), `token_records`
(each reply's per-token records, packed by token_pack, read only when asked for) and
`message_search` (an FTS5 trigram index over the casefolded message text, kept by triggers;
contentless and without positions, a fifth of a full index: it finds the messages holding
every trigram of a query, and the query checks those for the substring itself). The triggers call `casefold`, a Python
function every connection made by `connect` registers.

Opening checks the file before trusting it, on a read-only connection (check_database): the
SQLite header, the -wal (store/wal.py: commits SQLite could not read are damage), the size the
header or the -wal's last commit promises against the pages the file and the -wal hold,
`PRAGMA quick_check`, and the schema version. Any failure raises DatabaseUnusable and leaves the
file and its -wal exactly as they were. Only damage is called damaged (error_kind): a query
SQLite cannot parse or a full disk is a plain StoreError.
"""
from __future__ import annotations

import os
import sqlite3
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DatabaseUnusable, StoreError, describe_os_error
from .wal import WalState, read_wal

DB_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 3000
_HEADER = b"SQLite format 3\x00"

# Deleted chats wait here for TRASH_DAYS (Undo, the Trash view). Added after version 1 without a
# version change: an older chatgui ignores the table (and shows those chats as not deleted).
_TRASH = """CREATE TABLE IF NOT EXISTS trash(
    chat_id TEXT PRIMARY KEY REFERENCES chats(id) ON DELETE CASCADE,
    deleted REAL NOT NULL
)"""

# The last two characters of each message, casefolded: a one- or two-character query's matches at
# the very end of a text have no trigram of their own (HistoryStore.search). Also added after
# version 1: an older chatgui keeps it up to date (it registers `casefold` too).
_TAIL_INDEX = "CREATE INDEX IF NOT EXISTS messages_by_tail ON messages(substr(casefold(content), -2))"

_SCHEMA = """
CREATE TABLE chats(
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,           -- as the user set it ("" for none)
    list_title TEXT NOT NULL,      -- what the chat list shows: the title or the first question
    created REAL NOT NULL,
    updated REAL NOT NULL,
    system_prompt TEXT,
    settings TEXT,                 -- unused, NULL (older versions wrote JSON never read)
    selected_root TEXT,            -- the shown top-level message
    revision INTEGER NOT NULL DEFAULT 0  -- +1 per write: tells a writer its cached rows are stale
);
CREATE INDEX chats_by_updated ON chats(updated DESC);
CREATE TABLE messages(
    rowid INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,          -- creation order within the chat
    parent_id TEXT,
    selected_child TEXT,           -- which child is shown below this message
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT NOT NULL,            -- JSON, without the token records
    UNIQUE(chat_id, id)
);
CREATE INDEX messages_by_chat ON messages(chat_id, seq);
CREATE TABLE token_records(
    message_rowid INTEGER PRIMARY KEY REFERENCES messages(rowid) ON DELETE CASCADE,
    count INTEGER NOT NULL,
    data BLOB NOT NULL             -- packed by token_pack (columns, or JSON; zlib)
);
CREATE VIRTUAL TABLE message_search USING fts5(content, content='', tokenize='trigram', detail='none');
CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO message_search(rowid, content) VALUES (new.rowid, casefold(new.content));
END;
CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, content) VALUES ('delete', old.rowid, casefold(old.content));
END;
CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, content) VALUES ('delete', old.rowid, casefold(old.content));
    INSERT INTO message_search(rowid, content) VALUES (new.rowid, casefold(new.content));
END;
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any one thread
    at a time (the callers serialize)."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.create_function("casefold", 1, casefold, deterministic=True)
    conn.execute("PRAGMA foreign_keys=ON")
    # NORMAL in WAL mode: a commit survives a killed process; only a power cut can lose the last ones.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def connect_readonly(path: Path, main_file_only: bool = False) -> sqlite3.Connection:
    """A connection that cannot write the database or its -wal (SQLite still reads the -wal, and
    may build its -shm index of it). Closing it never checkpoints. `main_file_only`: read the
    main file alone (SQLite's `immutable`), for a WAL database with nothing in its -wal: SQLite
    would otherwise create an empty -wal and -shm beside it, and a reader cannot remove them."""
    uri = Path(os.path.abspath(path)).as_uri() + ("?mode=ro&immutable=1" if main_file_only else "?mode=ro")
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.create_function("casefold", 1, casefold, deterministic=True)
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back what the failed transaction left. SQLite has already rolled the whole transaction
    back after some errors (a full disk, out of memory): then there is nothing to do, and the
    error that caused it stays the one reported."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """`with write_transaction(conn):` the block's statements in one transaction, taking the write
    lock at once (BEGIN IMMEDIATE: no deadlock upgrading a read); committed when the block ends,
    rolled back on any exception (KeyboardInterrupt too), which is raised on unchanged."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)   # (never hides the error: SQLite may have rolled back already)
        raise


def casefold(value) -> str:
    """Search folds case the Python way (Straße finds STRASSE), in the index and in queries."""
    if isinstance(value, bytes):  # a text with a lone surrogate, stored as bytes (rows.db_text)
        value = value.decode("utf-8", "replace")
    return value.casefold() if isinstance(value, str) else ""


def open_database(path: Path, backups: list[Path]) -> sqlite3.Connection:
    """Open (or create) the database at `path`, checked; raises DatabaseUnusable.

    Every check runs on a read-only connection before the first writable one exists: a database
    that is refused stays byte-identical (no checkpoint of its -wal, no switch to WAL mode)."""
    check_database(path, backups)
    conn = None
    try:
        conn = connect(path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode {mode}")
        _ensure_schema(conn, path, backups)
        return conn
    except DatabaseUnusable:
        _close(conn)
        raise
    except sqlite3.Error as err:
        _close(conn)
        raise classify(err, path, backups) from err


# SQLite's primary result codes (the low byte of an extended code) and what each means here.
_CORRUPT, _NOTADB = 11, 26
_BUSY, _LOCKED = 5, 6
_FULL, _NOMEM = 13, 7
_UNREADABLE = {3, 8, 10, 14, 22, 23}   # PERM, READONLY, IOERR, CANTOPEN, NOLFS, AUTH
_READONLY_ROLLBACK = 776   # a read-only connection found a hot journal it may not roll back


def error_kind(err: BaseException) -> str:
    """What a sqlite3 error says about the database: "corrupt", "not_sqlite" (only these two are
    damage), "locked", "full", "nomem", "unreadable", or "other" (a statement SQLite refused:
    a query it cannot parse, a constraint; nothing is wrong with the file)."""
    code = getattr(err, "sqlite_errorcode", None)   # Python 3.11+
    if code is not None:
        code &= 0xFF
        if code == _CORRUPT:
            return "corrupt"
        if code == _NOTADB:
            return "not_sqlite"
        if code in (_BUSY, _LOCKED):
            return "locked"
        if code == _FULL:
            return "full"
        if code == _NOMEM:
            return "nomem"
        return "unreadable" if code in _UNREADABLE else "other"
    text = str(err).lower()   # Python 3.10: only the message tells
    for words, kind in ((("malformed", "corrupt"), "corrupt"), (("not a database", "file is encrypted"), "not_sqlite"),
                        (("locked", "busy"), "locked"), (("disk is full",), "full"), (("out of memory",), "nomem"),
                        (("unable to open", "readonly", "disk i/o", "authorization"), "unreadable")):
        if any(w in text for w in words):
            return kind
    return "other"


def classify(err: sqlite3.Error, path: Path, backups: list[Path]) -> StoreError:
    """The StoreError for a sqlite3 error while opening or using the database: DatabaseUnusable
    where the database cannot be used as it is (damage, another program holding it, a file that
    cannot be read), a plain StoreError for trouble that is not the file's (a full disk)."""
    kind = error_kind(err)
    if kind == "locked":
        return DatabaseUnusable(f"The chat database {path.name} is locked by another program "
                                "(is chatgui already running?). Close it and start again.",
                                "locked", path, backups, err)
    if kind == "not_sqlite":
        return DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups, err)
    if kind == "corrupt":
        return DatabaseUnusable(_message(path, f"is damaged ({err})", backups), "corrupt", path, backups, err)
    if kind == "full":
        return StoreError(f"Could not write to {path.name}: the disk is full", path, err)
    if kind == "nomem":
        return StoreError(f"Could not use {path.name}: not enough memory", path, err)
    return DatabaseUnusable(f"The chat database {path.name} cannot be opened ({err}).", "unreadable",
                            path, backups, err)


def check_database(path: Path, backups: list[Path]) -> bool:
    """Check the database at `path` (and its -wal) without writing to either; False when there
    is none yet (no file, or an empty one and no -wal). Raises DatabaseUnusable."""
    try:
        size = os.path.getsize(path)
        wal = read_wal(Path(f"{path}-wal"))
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise DatabaseUnusable(f"The chat database {path.name} cannot be read: {describe_os_error(err)}.",
                               "unreadable", path, backups, err) from err
    if wal.damaged:
        raise DatabaseUnusable(_message(path, f"is damaged: its journal {path.name}-wal holds {wal.lost_commits}"
                                              " saved changes that cannot be read", backups),
                               "wal_damaged", path, backups)
    if size == 0 and not wal.db_pages:
        return False   # SQLite treats an empty file as an empty database
    if size:
        _check_size(path, size, head, wal, backups)
    try:
        _check_contents(path, head, wal, backups)
    except sqlite3.Error as err:
        if getattr(err, "sqlite_errorcode", None) != _READONLY_ROLLBACK and not (
                os.path.exists(f"{path}-journal") and "readonly" in str(err).lower()):
            raise classify(err, path, backups) from err
        # A rollback-journal database with a hot journal (a writer died mid-transaction): SQLite's
        # recovery, which every reader must run first, puts back the last committed state.
        _roll_back_hot_journal(path, backups)
        try:
            _check_contents(path, head, wal, backups)
        except sqlite3.Error as err2:
            raise classify(err2, path, backups) from err2
    return True


def _check_contents(path: Path, head: bytes, wal: WalState, backups: list[Path]) -> None:
    """quick_check and the schema version, on a read-only connection. A WAL database whose -wal
    holds no commit is read from the main file alone, as SQLite would (and nothing is created)."""
    conn = connect_readonly(path, main_file_only=head[18:20] == b"\x02\x02" and not wal.db_pages)
    try:
        if [r[0] for r in conn.execute("PRAGMA quick_check")] != ["ok"]:
            raise DatabaseUnusable(_message(path, "is damaged", backups), "corrupt", path, backups)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseUnusable(f"The chat database {path.name} was written by a newer version of chatgui; "
                                   "this version will not change it.", "newer", path, backups)
        if version < SCHEMA_VERSION and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups)
    finally:
        _close(conn)


def _roll_back_hot_journal(path: Path, backups: list[Path]) -> None:
    conn = None
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()   # the first read rolls back
    except sqlite3.Error as err:
        raise classify(err, path, backups) from err
    finally:
        _close(conn)


def _check_size(path: Path, size: int, head: bytes, wal: WalState, backups: list[Path]) -> None:
    """Refuse a file that is not SQLite, or that lacks pages neither it nor its -wal holds."""
    if len(head) < 100 or not head.startswith(_HEADER):
        raise DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups)
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages = struct.unpack(">II", head[24:32])
    valid_for = struct.unpack(">I", head[92:96])[0]
    # The page count in the header is only current when "version-valid-for" matches the counter;
    # with a -wal, SQLite takes the size from its last commit (a checkpoint cut short by a full
    # disk leaves page 1 with the new count in a main file that has not grown yet).
    if wal.db_pages:
        pages = wal.db_pages
    elif valid_for != change_counter:
        return
    in_file = size // page_size
    if any(p not in wal.pages for p in range(in_file + 1, pages + 1)):
        raise DatabaseUnusable(_message(path, "is truncated (part of the file is missing)", backups),
                               "truncated", path, backups)


def check_file(path: Path, backups: list[Path]) -> None:
    """Refuse a file that is not a sound chatgui database or is shorter than its header says
    (a backup: one file, no -wal)."""
    if not check_database(path, backups):
        raise DatabaseUnusable(_message(path, "is empty", backups), "not_sqlite", path, backups)


def _ensure_schema(conn: sqlite3.Connection, path: Path, backups: list[Path]) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DatabaseUnusable(f"The chat database {path.name} was written by a newer version of chatgui; "
                               "this version will not change it.", "newer", path, backups)
    if version == SCHEMA_VERSION:
        conn.execute(_TRASH)
        conn.execute(_TAIL_INDEX)   # built once, on the first start of this version (~0.3 s per 100,000 messages)
        return
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if tables:
        raise DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups)
    with write_transaction(conn):   # statements one by one: executescript would commit midway
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        conn.execute(_TRASH)
        conn.execute(_TAIL_INDEX)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _statements(script: str) -> list[str]:
    """Split the schema into statements (trigger bodies contain ';' too)."""
    out, current = [], []
    for line in script.splitlines():
        line = line.split("--", 1)[0].rstrip()
        if not line:
            continue
        current.append(line)
        text = "\n".join(current)
        if line.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            current = []
    return out


def _message(path: Path, what: str, backups: list[Path]) -> str:
    tail = " A backup can be restored." if backups else " There is no backup to restore."
    return f"The chat database {path.name} {what}; it was left untouched.{tail}"


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:
            pass

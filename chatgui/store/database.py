"""The chat database: one SQLite file (WAL mode) in the data folder.

Tables: `chats` (one row per chat: what the chat list shows, its system prompt),
`messages` (the tree: parent, the selected child, text, metadata as JSON), `token_records`
(each reply's per-token records, packed by token_pack, read only when asked for) and
`message_search` (an FTS5 trigram index over the casefolded message text, kept by triggers;
contentless and without positions, a fifth of a full index: it finds the messages holding
every trigram of a query, and the query checks those for the substring itself). The triggers call `casefold`, a Python
function every connection made by `connect` registers.

Opening checks the file before trusting it: the SQLite header, the size the header promises,
`PRAGMA quick_check`, and the schema version. Any failure raises DatabaseUnusable and leaves
the file exactly as it was.
"""
from __future__ import annotations

import os
import sqlite3
import struct
from pathlib import Path

from .errors import DatabaseUnusable, describe_os_error

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


def casefold(value) -> str:
    """Search folds case the Python way (Straße finds STRASSE), in the index and in queries."""
    if isinstance(value, bytes):  # a text with a lone surrogate, stored as bytes (rows.db_text)
        value = value.decode("utf-8", "replace")
    return value.casefold() if isinstance(value, str) else ""


def open_database(path: Path, backups: list[Path]) -> sqlite3.Connection:
    """Open (or create) the database at `path`, checked; raises DatabaseUnusable."""
    existed = os.path.exists(path)
    if existed:
        check_file(path, backups)
    conn = None
    try:
        conn = connect(path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode {mode}")
        if existed:
            result = [r[0] for r in conn.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise DatabaseUnusable(_message(path, "is damaged", backups), "corrupt", path, backups)
        _ensure_schema(conn, path, backups)
        return conn
    except DatabaseUnusable:
        _close(conn)
        raise
    except sqlite3.DatabaseError as err:
        _close(conn)
        raise classify(err, path, backups) from err


def classify(err: sqlite3.DatabaseError, path: Path, backups: list[Path]) -> DatabaseUnusable:
    text = str(err).lower()
    if "locked" in text or "busy" in text:
        return DatabaseUnusable(f"The chat database {path.name} is locked by another program "
                                "(is chatgui already running?). Close it and start again.", "locked", path, backups, err)
    if "not a database" in text or "file is encrypted" in text:
        return DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups, err)
    if "unable to open" in text or "readonly" in text or "disk i/o" in text:
        return DatabaseUnusable(f"The chat database {path.name} cannot be opened ({err}).", "unreadable",
                                path, backups, err)
    return DatabaseUnusable(_message(path, f"is damaged ({err})", backups), "corrupt", path, backups, err)


def check_file(path: Path, backups: list[Path]) -> None:
    """Refuse a file that is not SQLite or is shorter than its own header says."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as err:
        raise DatabaseUnusable(f"The chat database {path.name} cannot be read: {describe_os_error(err)}.",
                               "unreadable", path, backups, err) from err
    if size == 0:
        return  # SQLite treats an empty file as an empty database
    if len(head) < 100 or not head.startswith(_HEADER):
        raise DatabaseUnusable(_message(path, "is not a chatgui database", backups), "not_sqlite", path, backups)
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages = struct.unpack(">II", head[24:32])
    valid_for = struct.unpack(">I", head[92:96])[0]
    # The page count in the header is only current when "version-valid-for" matches the counter.
    if valid_for == change_counter and pages and size < pages * page_size:
        raise DatabaseUnusable(_message(path, "is truncated (part of the file is missing)", backups),
                               "truncated", path, backups)


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
    conn.execute("BEGIN IMMEDIATE")  # statements one by one: executescript would commit midway
    try:
        for statement in _statements(_SCHEMA):
            conn.execute(statement)
        conn.execute(_TRASH)
        conn.execute(_TAIL_INDEX)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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

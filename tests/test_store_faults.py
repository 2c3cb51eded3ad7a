"""The chat store under faults (issue 29): a good database is never called damaged, damage to
the -wal never loses chats silently, a refused database stays byte-identical, errors that are
not damage say what they are (a query search cannot read, a full disk), backups rotate by their
recorded time, and a data folder that cannot be locked stops the app."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chatgui.store import DatabaseUnusable, HistoryStore, InstanceLock, StoreError, list_backups, restore_backup
from chatgui.session import Chat
from chatgui.store import backup as backup_mod
from chatgui.store.database import DB_NAME, SCHEMA_VERSION, error_kind

WAL = DB_NAME + "-wal"


def make_chat(title: str, text: str = "hello") -> Chat:
    chat = Chat(title=title)
    chat.append("user", text)
    chat.append("assistant", f"answer to {title}")
    return chat


def digests(folder: Path) -> dict[str, str]:
    """The database and its -wal, hashed (the -shm is SQLite's index of the -wal, rebuilt from it)."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in (DB_NAME, WAL) if (folder / name).exists()}


def crash_image(folder: Path, old: int, new: int, text: str = "y" * 3000) -> list[Chat]:
    """The files a killed chatgui leaves: `old` chats checkpointed into the main file, `new` ones
    only in the -wal (copied while the store was open, so nothing checkpointed them)."""
    work = folder.parent / (folder.name + "-live")
    store = HistoryStore(work, backups=False)
    chats = [make_chat(f"old {i}") for i in range(old)]
    for chat in chats:
        store.save(chat)
    store.close()
    store = HistoryStore(work, backups=False)
    store.open()
    store._w().conn.execute("PRAGMA wal_autocheckpoint=0")
    for i in range(new):
        chat = make_chat(f"new {i}", text)
        store.save(chat)
        chats.append(chat)
    folder.mkdir()
    for name in (DB_NAME, WAL):
        shutil.copyfile(work / name, folder / name)
    store.close()
    return chats


def wal_frames(wal: bytes) -> list[tuple[int, int, int]]:
    """(offset, page number, database size if a commit frame else 0) of each frame."""
    page_size = struct.unpack(">I", wal[8:12])[0]
    frames, offset = [], 32
    while offset + 24 + page_size <= len(wal):
        page, commit = struct.unpack(">II", wal[offset:offset + 8])
        frames.append((offset, page, commit))
        offset += 24 + page_size
    return frames


# ---- case 1: a checkpoint cut short is not truncation ------------------------------------------

def checkpoint_cut_short(folder: Path) -> list[Chat]:
    """A checkpoint that wrote page 1 (with the new, larger page count) and then stopped before
    the main file grew (the disk was full): the main file is shorter than its header says, and
    every page it lacks is in the -wal. SQLite reads it whole."""
    chats = crash_image(folder, old=3, new=20)
    db, wal = folder / DB_NAME, (folder / WAL).read_bytes()
    page_size = struct.unpack(">I", wal[8:12])[0]
    last_page1 = [off for off, page, _c in wal_frames(wal) if page == 1][-1]
    page1 = wal[last_page1 + 24:last_page1 + 24 + page_size]
    data = bytearray(db.read_bytes())
    data[:page_size] = page1
    db.write_bytes(bytes(data))
    claimed = struct.unpack(">I", page1[28:32])[0]
    assert len(data) < claimed * page_size   # what the old start-up check called "truncated"
    return chats


def test_a_checkpoint_cut_short_opens_with_every_chat(tmp_path):
    folder = tmp_path / "data"
    chats = checkpoint_cut_short(folder)
    plain = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    assert plain.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    plain.close()
    store = HistoryStore(folder, backups=False)
    assert sorted(s.id for s in store.list_chats()) == sorted(c.id for c in chats)
    assert store.load(chats[-1].id) == chats[-1]
    store.close()


def test_a_truncated_file_with_a_wal_is_still_refused(tmp_path):
    """The -wal explains only the pages it holds: a main file cut below those is truncated."""
    folder = tmp_path / "data"
    crash_image(folder, old=40, new=2, text="short")
    db = folder / DB_NAME
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    before = digests(folder)
    with pytest.raises(DatabaseUnusable) as info:
        HistoryStore(folder, backups=False).list_chats()
    assert info.value.kind == "truncated" and digests(folder) == before


# ---- case 2: errors that are not damage ---------------------------------------------------------

@pytest.mark.parametrize("query, found", [
    ("a\x00b", True), ("\x00\x00\x00", False), ("zz\x00", False), ('say "hi', True), ('"', True),
    ("'); DROP", False), ("NEAR(", False), ("*", False)])
def test_a_search_with_nul_or_quotes_is_answered_never_damaged(tmp_path, query, found):
    store = HistoryStore(tmp_path, backups=False)
    hit, other = make_chat("hit", "text with a\x00b in it"), make_chat("other")
    hit.append("user", 'and say "hi there')
    store.save(hit)
    store.save(other)
    assert store.search(query) == ([hit.id] if found else [])
    assert sorted(store.search("answer")) == sorted([hit.id, other.id])   # the store goes on working
    store.close()


def test_a_query_fts5_cannot_parse_is_not_damage(tmp_path, monkeypatch):
    """Should a query ever reach FTS5 in a form it cannot parse, the user reads that the search
    did not understand it: never "damaged", never a Restore button."""
    store = HistoryStore(tmp_path, backups=False)
    store.save(make_chat("one", "some text"))
    monkeypatch.setattr("chatgui.store.history._quoted", lambda term: term + '"')
    with pytest.raises(StoreError) as info:
        store.search("some")
    assert not isinstance(info.value, DatabaseUnusable)
    assert "could not understand" in str(info.value) and "damaged" not in str(info.value)
    store.close()


def test_real_damage_is_still_called_damaged(tmp_path):
    store = HistoryStore(tmp_path, backups=False)
    for i in range(30):
        store.save(make_chat(f"chat {i}", "z" * 2000))
    store.close()
    db = tmp_path / DB_NAME
    data = bytearray(db.read_bytes())
    page_size = struct.unpack(">H", data[16:18])[0]
    data[page_size * 3:page_size * 6] = os.urandom(page_size * 3)
    db.write_bytes(bytes(data))
    with pytest.raises(DatabaseUnusable) as info:
        HistoryStore(tmp_path, backups=False).list_chats()
    assert info.value.kind == "corrupt" and "damaged" in str(info.value)


def real_sqlite_errors(tmp_path) -> list[tuple[str, sqlite3.Error]]:
    """(kind, error) for real errors SQLite raised."""
    errors = []

    def catch(kind, action):
        with pytest.raises(sqlite3.Error) as info:
            action()
        errors.append((kind, info.value))

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE s USING fts5(content)")
    catch("other", lambda: conn.execute("SELECT * FROM s WHERE s MATCH ?", ('"unbalanced',)).fetchall())
    conn.execute("CREATE TABLE t(x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    catch("other", lambda: conn.execute("INSERT INTO t VALUES (1)"))
    conn.execute("PRAGMA max_page_count=" + str(conn.execute("PRAGMA page_count").fetchone()[0]))
    catch("full", lambda: conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,)))
    (tmp_path / "zip").write_bytes(b"PK\x03\x04" * 1000)
    catch("not_sqlite", lambda: sqlite3.connect(tmp_path / "zip").execute("SELECT * FROM sqlite_master").fetchall())
    bad = tmp_path / "bad.sqlite3"
    made = sqlite3.connect(bad)
    made.execute("CREATE TABLE t(x)")
    made.executemany("INSERT INTO t VALUES (?)", [("y" * 500,)] * 200)
    made.commit()
    made.close()
    data = bytearray(bad.read_bytes())
    data[4096 + 8:4096 * 3] = b"\xee" * (4096 * 2 - 8)   # the table's root page and more
    bad.write_bytes(bytes(data))
    catch("corrupt", lambda: sqlite3.connect(bad).execute("SELECT count(*), max(x) FROM t").fetchall())
    return errors


def test_error_kinds_by_code_and_by_message(tmp_path):
    """Only SQLITE_CORRUPT and SQLITE_NOTADB are damage; Python 3.10 (no error code on the
    exception) reads the message and must agree."""
    for kind, err in real_sqlite_errors(tmp_path):
        assert error_kind(err) == kind, err
        assert error_kind(type(err)(str(err))) == kind, err   # as Python 3.10 raises it


def test_a_full_disk_says_disk_full_and_loses_nothing(tmp_path):
    """SQLite rolls the whole transaction back on SQLITE_FULL; the ROLLBACK after it must not
    hide why (a tiny max_page_count makes SQLite raise SQLITE_FULL where a disk would)."""
    store = HistoryStore(tmp_path, backups=False)
    kept = make_chat("kept")
    store.save(kept)
    conn = store._w().conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")
    too_big = make_chat("t" * 200_000)   # the chat row itself does not fit
    with pytest.raises(StoreError) as info:
        store.save(too_big)
    assert not isinstance(info.value, DatabaseUnusable)
    assert "disk is full" in str(info.value) and "rollback" not in str(info.value)
    with pytest.raises(StoreError) as info:
        store.save(make_chat("m", "x" * 200_000))   # a message row (its statement alone rolled back)
    assert "disk is full" in str(info.value)
    conn.execute("PRAGMA max_page_count=1073741823")   # space freed: saving works again
    store.save(too_big)
    assert sorted(s.id for s in store.list_chats()) == sorted([kept.id, too_big.id])
    store.close()


# ---- case 4: the -wal damaged; a refused database is never written --------------------------------

def test_damage_in_the_wal_is_reported_and_nothing_is_rewritten(tmp_path):
    folder = tmp_path / "data"
    chats = crash_image(folder, old=3, new=12)
    wal_path = folder / WAL
    wal = bytearray(wal_path.read_bytes())
    frames = wal_frames(bytes(wal))
    offset = frames[len(frames) // 3][0]   # a frame of an early transaction: the later ones hang on it
    wal[offset + 24 + 100:offset + 24 + 110] = b"\xff" * 10
    wal_path.write_bytes(bytes(wal))
    before = digests(folder)
    store = HistoryStore(folder)
    with pytest.raises(DatabaseUnusable) as info:
        store.list_chats()
    err = info.value
    assert err.kind == "wal_damaged" and WAL in str(err) and "left untouched" in str(err)
    with pytest.raises(StoreError):
        store.save(make_chat("must not be written"))
    store.close()
    assert digests(folder) == before and not list_backups(folder)
    # The files stay whole, for a recovery by hand: SQLite reads what precedes the damage.
    plain = sqlite3.connect(f"file:{folder / DB_NAME}?mode=ro", uri=True)
    assert 3 <= plain.execute("SELECT count(*) FROM chats").fetchone()[0] < len(chats)
    plain.close()
    assert digests(folder) == before


def test_an_unfinished_transaction_at_the_end_of_the_wal_is_not_damage(tmp_path):
    """A killed process can leave frames of a transaction it never committed (or a torn last
    frame): SQLite rightly ignores them, and so does the check."""
    folder = tmp_path / "data"
    chats = crash_image(folder, old=2, new=4)
    wal_path = folder / WAL
    wal = wal_path.read_bytes()
    offset, page, _commit = wal_frames(wal)[-1]
    page_size = struct.unpack(">I", wal[8:12])[0]
    torn = wal + wal[offset:offset + 4] + b"\x00" * 4 + wal[offset + 8:offset + 24] + b"\x01" * (page_size // 2)
    wal_path.write_bytes(torn)
    store = HistoryStore(folder, backups=False)
    assert sorted(s.id for s in store.list_chats()) == sorted(c.id for c in chats)
    store.close()


def test_a_refused_database_with_a_wal_stays_byte_identical(tmp_path):
    """A database from a newer chatgui, its last changes still in the -wal: refused, and neither
    file is touched (no checkpoint when the store closes)."""
    folder = tmp_path / "data"
    crash_image(folder, old=2, new=3)
    conn = sqlite3.connect(folder / DB_NAME)   # writes the new version into the -wal, like a newer chatgui
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    shutil.copyfile(folder / WAL, tmp_path / "wal")
    shutil.copyfile(folder / DB_NAME, tmp_path / "db")
    conn.close()
    os.replace(tmp_path / "wal", folder / WAL)
    os.replace(tmp_path / "db", folder / DB_NAME)
    before = digests(folder)
    assert set(before) == {DB_NAME, WAL}
    store = HistoryStore(folder)
    with pytest.raises(DatabaseUnusable) as info:
        store.list_chats()
    assert info.value.kind == "newer"
    store.close()
    assert digests(folder) == before


def test_a_newer_rollback_journal_database_is_refused_unchanged(tmp_path):
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE chats(id TEXT PRIMARY KEY)")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    assert db.read_bytes()[18:20] == b"\x01\x01"   # rollback journal, not WAL
    before = digests(tmp_path)
    with pytest.raises(DatabaseUnusable) as info:
        HistoryStore(tmp_path).list_chats()
    assert info.value.kind == "newer" and digests(tmp_path) == before
    assert not (tmp_path / WAL).exists()


def test_a_hot_rollback_journal_is_rolled_back_not_refused(tmp_path):
    """A rollback-journal database (a restored backup, before its first open) whose writer died
    mid-transaction: a read-only connection may not roll the journal back, but the store must
    not call the database unreadable; SQLite's recovery puts back the last commit."""
    store = HistoryStore(tmp_path, backups=False)
    chats = [make_chat(f"chat {i}", "x" * 3000) for i in range(5)]
    for chat in chats:
        store.save(chat)
    store.close()
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    writer = textwrap.dedent(f"""
        import os, sqlite3
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("PRAGMA cache_size=1")   # pages reach the file before the commit
        conn.execute("BEGIN")
        conn.execute("UPDATE chats SET title = 'never committed', system_prompt = hex(randomblob(50000))")
        os._exit(9)
    """)
    subprocess.run([sys.executable, "-c", writer], check=False, timeout=60)
    journal = (tmp_path / (DB_NAME + "-journal")).read_bytes()
    assert journal[:8] == bytes.fromhex("d9d505f920a163d7")   # synced, pages written over: a hot journal
    store = HistoryStore(tmp_path, backups=False)
    assert sorted(s.title for s in store.list_chats()) == sorted(c.title for c in chats)
    store.close()


def test_a_corrupt_database_with_a_wal_is_not_checkpointed(tmp_path):
    folder = tmp_path / "data"
    crash_image(folder, old=30, new=3, text="w" * 2000)
    db = folder / DB_NAME
    data = bytearray(db.read_bytes())
    page_size = struct.unpack(">H", data[16:18])[0]
    in_wal = {page for _off, page, _commit in wal_frames((folder / WAL).read_bytes())}
    for page in [p for p in range(2, len(data) // page_size) if p not in in_wal][:4]:   # damage SQLite reads
        data[(page - 1) * page_size:page * page_size] = os.urandom(page_size)
    db.write_bytes(bytes(data))
    before = digests(folder)
    store = HistoryStore(folder)
    with pytest.raises(DatabaseUnusable) as info:
        store.list_chats()
    assert info.value.kind == "corrupt"
    store.close()
    assert digests(folder) == before


# ---- case 10: backups rotate by their recorded time ------------------------------------------------

def future_backups(folder: Path, mtime: str, count: int = 3) -> list[Path]:
    """Backups a clock set a year ahead made: their names in the future, their file times too
    (mtime "future") or, copied since, ten days ago ("past")."""
    store = HistoryStore(folder, backups=False)
    store.save(make_chat("backed up"))
    made, now = [], time.time()
    for day in range(count):
        when = now + (400 + day) * backup_mod.DAY
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
        path = backup_mod.backups_dir(folder) / f"history-{stamp}.sqlite3"
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(store.backup_now(), path)
        file_time = when if mtime == "future" else now - 10 * backup_mod.DAY + day * 60
        os.utime(path, (file_time, file_time))
        made.append(path)
    store.close()
    for path in list_backups(folder):
        if path not in made:
            path.unlink()
    return made


@pytest.mark.parametrize("mtime", ["future", "past"])
def test_backups_stamped_in_the_future_do_not_stop_or_eat_new_backups(tmp_path, mtime):
    future = future_backups(tmp_path, mtime)
    assert backup_mod.backup_due(tmp_path)   # none made in the last day by a clock that was right
    store = HistoryStore(tmp_path)
    store.list_chats()
    store.close()   # (waits for the backup thread)
    backups = list_backups(tmp_path)
    assert len(backups) == backup_mod.KEEP and backups[0] not in future   # the new one kept, listed first
    assert backups[1:] == sorted(future, reverse=True)[:2]   # the oldest of the future-stamped went
    assert not backup_mod.backup_due(tmp_path)
    newest = backup_mod.make_backup(tmp_path / DB_NAME, tmp_path)
    assert newest.exists() and list_backups(tmp_path)[0] == newest
    restore_backup(tmp_path, list_backups(tmp_path)[0])   # the newest made is the one offered
    assert [s.title for s in HistoryStore(tmp_path, backups=False).list_chats()] == ["backed up"]


# ---- case 11: a data folder that cannot be locked ---------------------------------------------------

def test_a_lock_that_cannot_be_created_is_a_plain_error(tmp_path):
    (tmp_path / ".chatgui.lock").mkdir()
    with pytest.raises(StoreError) as info:
        InstanceLock(tmp_path).acquire()
    assert "lock" in str(info.value) and "folder is in the way" in str(info.value)


def test_an_existing_lock_file_that_cannot_be_written_still_locks(tmp_path, monkeypatch):
    """A read-only data folder that already has its lock file: the lock is taken on the file
    opened for reading, so two instances reading one read-only folder still exclude each other."""
    from chatgui.common.io import lock as lock_module
    with InstanceLock(tmp_path):
        pass
    real_open = os.open

    def read_only_folder(path, flags, *args):
        if flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(lock_module.os, "open", read_only_folder)
    with InstanceLock(tmp_path):
        with pytest.raises(StoreError) as info:
            InstanceLock(tmp_path).acquire()
        assert "already running" in str(info.value)
    (tmp_path / ".chatgui.lock").unlink()
    with pytest.raises(StoreError) as info:
        InstanceLock(tmp_path).acquire()
    assert "lock file" in str(info.value) and "read-only" in str(info.value)

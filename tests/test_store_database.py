"""The chat database under faults: migration among damaged files, kill -9 while a reply is
saved, damaged / foreign / truncated / locked databases, backups and their restoring, a second
instance, imports (chatgui JSON, ChatGPT's conversations.json) and big exports."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chatgui.common.records import TokenRecord
from chatgui.store import (AlreadyRunning, DatabaseUnusable, HistoryStore, InstanceLock, StoreError,
                           export_json, list_backups, restore_backup)
from chatgui.session import Chat
from chatgui.store import backup as backup_mod
from chatgui.store.export import PACKED_KEY
from chatgui.store.legacy import chat_from_document

ROOT = Path(__file__).resolve().parents[1]


def make_chat(text: str, turns: int = 2) -> Chat:
    chat = Chat(title=text)
    for i in range(turns):
        chat.append("user", f"{text} question {i}")
        chat.append("assistant", f"{text} answer {i}", meta={"token_data": [TokenRecord(i, "x", 0.5)]})
    return chat


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved_store(folder: Path, n: int = 3) -> list[Chat]:
    """n chats saved, and a backup of them taken (instead of the day's backup at the start)."""
    store = HistoryStore(folder, backups=False)
    chats = [make_chat(f"chat {i}") for i in range(n)]
    for chat in chats:
        store.save(chat)
    store.backup_now()
    store.close()  # the last connection checkpoints: everything is in the main file
    return chats


# ---- migration -------------------------------------------------------------------------------

def test_migration_imports_good_files_in_one_go_and_quarantines_a_damaged_one(tmp_path):
    legacy = tmp_path / "chats"
    legacy.mkdir()
    good = [make_chat(f"old {i}") for i in range(5)]
    for chat in good:
        (legacy / f"{chat.id}.json").write_text(export_json(chat), encoding="utf-8")
    (legacy / "0badc0de.json").write_bytes(b'{"schema": 1, "messages": [')
    (legacy / ".index.json").write_text("{}")
    (legacy / "notes.txt").write_text("not a chat")
    store = HistoryStore(tmp_path)
    assert sorted(s.id for s in store.list_chats()) == sorted(c.id for c in good)
    for chat in good:
        assert store.load(chat.id) == chat
    problems = store.take_problems()
    assert [(p.path.name, p.action) for p in problems] == [("0badc0de.json", "moved to 0badc0de.json.corrupt")]
    assert sorted(p.name for p in (legacy / "migrated").iterdir()) == sorted(f"{c.id}.json" for c in good)
    assert sorted(p.name for p in legacy.iterdir()) == ["0badc0de.json.corrupt", "migrated", "notes.txt"]
    assert store.search("old 3 answer") == [good[3].id]
    again = HistoryStore(tmp_path)
    assert len(again.list_chats()) == 5 and again.take_problems() == []


def test_migration_cut_short_after_its_commit_imports_nothing_twice(tmp_path):
    legacy = tmp_path / "chats"
    legacy.mkdir()
    chat = make_chat("twice")
    HistoryStore(tmp_path).save(chat)  # already in the database, file not yet moved
    (legacy / f"{chat.id}.json").write_text(export_json(chat), encoding="utf-8")
    store = HistoryStore(tmp_path)
    assert [s.id for s in store.list_chats()] == [chat.id]
    assert (legacy / "migrated" / f"{chat.id}.json").is_file()


# ---- kill -9 while a reply streams into the database ----------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    from chatgui.common.records import ReplyMeta, TokenRecord
    from chatgui.store import HistoryStore
    from chatgui.session import Chat
    store = HistoryStore(sys.argv[1])
    chat = Chat(title="streaming")
    user = chat.append("user", "tell me a story")
    reply = chat.append("assistant", "")
    tokens = []
    start = time.time()
    last_save = 0.0
    while True:  # a reply growing by a token every 5 ms, saved every 0.5 s the way the UI does
        tokens.append(TokenRecord(len(tokens), "w", 0.5, ((1, "a", 0.2),), 0.5, ((1, "a", 0.5),)))
        chat.update_content(reply.id, "w" * len(tokens), ReplyMeta(token_data=tokens))
        if time.time() - last_save > 0.5:
            last_save = time.time()
            store.save_async(chat, on_done=lambda cid, err, n=len(tokens), t=last_save:
                             print("SAVED", t, n, err, flush=True))
        time.sleep(0.005)
""")


def test_kill_9_mid_reply_keeps_every_chat_and_all_but_the_last_seconds(tmp_path):
    old = saved_store(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    saves = []
    try:
        for line in proc.stdout:
            _tag, t, n, err = line.split()
            assert err == "None"
            saves.append((float(t), int(n)))
            if len(saves) >= 6:
                break
        time.sleep(0.3)  # mid-way between two saves
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    store = HistoryStore(tmp_path)  # opening runs quick_check: it raises on a damaged database
    listed = store.list_chats()
    assert sorted(s.id for s in listed if s.title != "streaming") == sorted(c.id for c in old)
    for chat in old:
        assert store.load(chat.id) == chat
    streaming = store.load(next(s.id for s in listed if s.title == "streaming"))
    reply = streaming.active_path()[-1]
    done_2s_before = max(n for t, n in saves if t <= killed_at - 2.0)
    assert len(reply.content) >= done_2s_before > 0
    assert len(reply.reply_meta.token_data) == len(reply.content)


# ---- databases that cannot be trusted ---------------------------------------------------------

def damage(db: Path, kind: str) -> None:
    data = bytearray(db.read_bytes())
    if kind == "corrupt":  # garbage over the pages after the first: the header still says SQLite
        page = 4096
        data[page:page * 3] = os.urandom(page * 2)
    elif kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "not_sqlite":
        data = b"PK\x03\x04 this is a zip file, not a database" * 100
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "not_sqlite"])
def test_untrustworthy_database_is_left_untouched_and_a_backup_offered(tmp_path, kind):
    chats = saved_store(tmp_path)
    db = tmp_path / "history.sqlite3"
    backups = list_backups(tmp_path)
    assert len(backups) == 1
    damage(db, kind)
    before = digest(db)
    store = HistoryStore(tmp_path)
    with pytest.raises(DatabaseUnusable) as info:
        store.list_chats()
    err = info.value
    assert err.kind == kind and err.backups == backups and "backup can be restored" in str(err)
    with pytest.raises(StoreError):
        store.save(make_chat("must not be written"))
    assert digest(db) == before and list_backups(tmp_path) == backups  # nothing written, nothing backed up
    moved = restore_backup(tmp_path, err.backups[0])
    assert [p.name for p in moved] == ["history.sqlite3.corrupt"] and digest(moved[0]) == before
    restored = HistoryStore(tmp_path)
    assert sorted(s.id for s in restored.list_chats()) == sorted(c.id for c in chats)
    assert restored.load(chats[0].id) == chats[0]


def test_a_damaged_backup_is_refused_and_moves_nothing(tmp_path):
    saved_store(tmp_path)
    db = tmp_path / "history.sqlite3"
    backup = list_backups(tmp_path)[0]
    damage(backup, "not_sqlite")
    before = digest(db)
    with pytest.raises(DatabaseUnusable):
        restore_backup(tmp_path, backup)
    assert digest(db) == before and not (tmp_path / "history.sqlite3.corrupt").exists()


def test_database_locked_by_another_program(tmp_path, monkeypatch):
    saved_store(tmp_path, 1)
    monkeypatch.setattr("chatgui.store.database.BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseUnusable) as info:
            HistoryStore(tmp_path).list_chats()
        assert info.value.kind == "locked" and "locked by another program" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(HistoryStore(tmp_path).list_chats()) == 1


def test_database_from_a_newer_chatgui_is_not_changed(tmp_path):
    saved_store(tmp_path, 1)
    db = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    before = digest(db)
    with pytest.raises(DatabaseUnusable) as info:
        HistoryStore(tmp_path).list_chats()
    assert info.value.kind == "newer" and digest(db) == before


def test_daily_backup_keeps_the_newest_three(tmp_path, monkeypatch):
    store = HistoryStore(tmp_path)
    store.save(make_chat("backed up"))
    store.close()
    first = list_backups(tmp_path)
    assert len(first) == 1  # taken when the store was first used
    HistoryStore(tmp_path).list_chats()
    assert list_backups(tmp_path) == first  # not due again on the same day
    start, days = time.time(), []
    for day in range(2, 10, 2):   # chatgui started again every other day
        days.append(start + day * backup_mod.DAY)
        monkeypatch.setattr(backup_mod, "_now", lambda: days[-1])
        store = HistoryStore(tmp_path)
        store.list_chats()
        store.close()
    stamp = lambda t: f"history-{time.strftime('%Y%m%d-%H%M%S', time.localtime(t))}.sqlite3"   # noqa: E731
    assert [b.name for b in list_backups(tmp_path)] == [stamp(t) for t in days[:0:-1]]
    check = sqlite3.connect(list_backups(tmp_path)[0])
    assert check.execute("SELECT count(*) FROM chats").fetchone()[0] == 1
    check.close()


# ---- one running instance per data folder ----------------------------------------------------

def test_second_instance_gets_a_clear_error(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatgui.store import InstanceLock;"
                               "InstanceLock(sys.argv[1]).acquire(); print('LOCKED', flush=True); time.sleep(60)",
         str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(AlreadyRunning) as info:
            InstanceLock(tmp_path).acquire()
        assert info.value.pid == holder.pid and "already running" in str(info.value)
    finally:
        holder.kill()  # SIGKILL: the lock goes with the process, no stale lock file blocks
        holder.wait(10)
    with InstanceLock(tmp_path) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())


# ---- import and export -----------------------------------------------------------------------

def chatgpt_export() -> list[dict]:
    """A conversations.json as ChatGPT writes it: a hidden system root, a regenerated answer,
    an image-only node, and current_node on the second answer."""
    def node(nid, parent, children, role=None, parts=None, t=None, **extra):
        msg = None if role is None else {"id": nid, "author": {"role": role}, "create_time": t,
                                         "content": {"content_type": "text", "parts": parts}, **extra}
        return {"id": nid, "message": msg, "parent": parent, "children": children}
    mapping = {
        "root": node("root", None, ["sys"]),
        "sys": node("sys", "root", ["q1"], "system", [""]),
        "q1": node("q1", "sys", ["a1", "a2"], "user", ["What is a lighthouse?"], 1700000000.0),
        "a1": node("a1", "q1", [], "assistant", ["A tower."], 1700000001.0),
        "a2": node("a2", "q1", ["img"], "assistant", ["A tower with a light", " for ships."], 1700000002.0,
                   metadata={"model_slug": "gpt-4o"}),
        "img": node("img", "a2", ["q2"], "user", [{"content_type": "image_asset_pointer"}], 1700000003.0),
        "q2": node("q2", "img", ["a3"], "user", ["Thanks!"], 1700000004.0),
        "a3": node("a3", "q2", [], "tool", ["tool output"], 1700000005.0),
    }
    return [{"title": "Lighthouses", "create_time": 1700000000.0, "update_time": 1700000005.0,
             "mapping": mapping, "current_node": "a3"},
            {"title": "Empty", "create_time": 1700000100.0, "update_time": 1700000100.0,
             "mapping": {"r": node("r", None, [])}, "current_node": "r"}]


def test_import_chatgpt_conversations_json(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(chatgpt_export()), encoding="utf-8")
    store = HistoryStore(tmp_path / "data")
    ids = store.import_file(path)
    assert len(ids) == 2
    chat = store.load(ids[0])
    assert chat.title == "Lighthouses" and chat.created == 1700000000.0
    shown = chat.active_path()
    assert [(m.role, m.content) for m in shown] == [
        ("user", "What is a lighthouse?"), ("assistant", "A tower with a light\n for ships."), ("user", "Thanks!")]
    assert shown[1].meta.to_dict() == {"model": "gpt-4o"}
    assert [m.content for m in chat.siblings(shown[1].id)] == ["A tower.", "A tower with a light\n for ships."]
    assert store.search("lighthouse") == [ids[0]]
    assert store.load(ids[1]).messages == {}


def test_import_keeps_existing_chats_and_refuses_other_files(tmp_path):
    store = HistoryStore(tmp_path / "data")
    chat = make_chat("mine")
    store.save(chat)
    exported = tmp_path / "mine.json"
    exported.write_text(export_json(chat), encoding="utf-8")
    [copy_id] = store.import_file(exported)  # the same chat again: a copy beside it, not over it
    assert copy_id != chat.id and store.load(copy_id).active_path()[0].content == "mine question 0"
    assert store.load(chat.id) == chat
    for junk in (b"not json", b'{"hello": 1}', b"[1, 2]"):
        exported.write_bytes(junk)
        with pytest.raises(StoreError, match="Could not import mine.json"):
            store.import_file(exported)
    assert len(store.list_chats()) == 2


def test_an_export_of_the_previous_version_imports_with_typed_records(tmp_path):
    store = HistoryStore(tmp_path / "data")
    old = {"id": 5, "t": "Hé", "p": 0.5, "alts": [[5, "Hé", 0.5], [7, "你", 0.25]], "sp": 0.75,
           "salts": [[5, "Hé", 0.75]]}
    doc = {"schema": 1, "id": "abc", "title": "old", "created": 1700000000.0, "updated": 1700000000.0,
           "messages": [{"id": "u", "role": "user", "content": "hi", "created": 1700000000.0, "parent_id": None,
                         "meta": {}},
                        {"id": "a", "role": "assistant", "content": "Hé", "created": 1700000001.0, "parent_id": "u",
                         "meta": {"token_data": [old, {"id": 6, "t": "x", "p": 0.5, "alts": [], "forced": True}],
                                  "model": "m"}}]}
    (tmp_path / "old.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    [chat_id] = store.import_file(tmp_path / "old.json")
    records = HistoryStore(store.folder).load(chat_id, tokens=False).token_data("a")
    assert records == [TokenRecord(5, "Hé", 0.5, ((5, "Hé", 0.5), (7, "你", 0.25)), 0.75, ((5, "Hé", 0.75),)),
                       TokenRecord(6, "x", 0.5, (), None, (), forced=True)]
    assert [r.to_dict() for r in records] == doc["messages"][1]["meta"]["token_data"]


def test_export_packs_token_records_and_imports_back_whole(tmp_path):
    store = HistoryStore(tmp_path / "data")
    chat = Chat(title="big")
    for i in range(60):
        tokens = [TokenRecord(i * 1000 + j, f"t{j}", 0.5, ((i * 1000 + j, f"t{j}", 0.5), (7, "alt", 0.25)), 0.75,
                              ((i * 1000 + j, f"t{j}", 0.75),)) for j in range(400)]
        tokens[3] = tokens[3]._replace(forced=True, sampled_prob=None, sampled_alts=())  # stored as JSON
        chat.append("user", f"question {i}")
        chat.append("assistant", "answer " * 3000, meta={"token_data": tokens, "model": "m"})
    store.save(chat)
    store.export_to_file(chat.id, tmp_path / "big.json")
    text = (tmp_path / "big.json").read_text(encoding="utf-8")
    assert "\n" not in text and len(text) > 1024 * 1024      # big: compact
    doc = json.loads(text)
    replies = [m["meta"] for m in doc["messages"] if m["role"] == "assistant"]
    assert doc["schema"] == 2 and all(PACKED_KEY in m and "token_data" not in m for m in replies)
    assert json.loads(export_json(chat)) == doc               # packed in memory: the same document
    as_dicts = len(json.dumps(chat.to_dict(), separators=(",", ":")))
    assert len(text) - 60 * len("answer " * 3000) < (as_dicts - 60 * len("answer " * 3000)) / 4
    assert chat_from_document(doc) == chat                    # the packed records read back (the store reads exports)
    [copy_id] = store.import_file(tmp_path / "big.json")
    copy = HistoryStore(store.folder).load(copy_id)
    copy.id = chat.id
    assert copy == chat and copy.token_data(chat.active_path()[-1].id)[3].forced   # token records included
    small = make_chat("small")
    small_doc = json.loads(export_json(small))
    assert "\n  " in export_json(small) and small_doc["schema"] == 2     # small chats stay readable
    plain = Chat(title="no records")
    plain.append("user", "hi")
    assert json.loads(export_json(plain))["schema"] == 1                  # older versions read it too
    store.export_to_file(chat.id, tmp_path / "big.md", "markdown")
    assert (tmp_path / "big.md").read_text(encoding="utf-8").startswith("# big\n")


def test_a_retired_store_never_opens_or_creates_the_database_again(tmp_path):
    """While a backup is being put in place, a late list or save must fail, not make a new file."""
    from chatgui.store import StoreError
    store = HistoryStore(tmp_path)
    store.list_chats()
    store.retire()
    for side in ("", "-wal", "-shm"):
        (tmp_path / f"history.sqlite3{side}").unlink(missing_ok=True)
    with pytest.raises(StoreError):
        store.list_chats()
    assert not (tmp_path / "history.sqlite3").exists()

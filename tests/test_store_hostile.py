"""Hostile chat files met by the migration, and disk trouble: nothing may crash the app, lose a
good chat, or be overwritten without having been read. (Database faults: test_store_database.py.)"""
from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest

from chatgui.store.export import SCHEMA
import chatgui.store.files as files_mod
from chatgui.store import (AppSettings, HistoryStore, StoreError, StoreProblem, atomic_write_text,
                           load_settings, save_settings)
from chatgui.session import Chat

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store not used yet: files planted in its old chats folder are met by the migration."""
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATGUI_CONFIG_DIR", str(tmp_path / "config"))
    s = HistoryStore()
    s.dir.mkdir(parents=True, exist_ok=True)
    return s


def good_chat(store: HistoryStore, text: str = "a good chat") -> Chat:
    chat = Chat()
    chat.append("user", text)
    chat.append("assistant", "fine")
    store.save(chat)
    return chat


def plant(store: HistoryStore, content: bytes | str | dict, name: str = "0badc0de") -> Path:
    path = store.dir / f"{name}.json"
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def valid_doc(**changes) -> dict:
    doc = {"schema": 1, "id": "x", "title": "t", "created": 1.0, "updated": 2.0, "system_prompt": None,
           "settings": None, "selected": {},
           "messages": [{"id": "m1", "role": "user", "content": "hi", "created": 1.0, "parent_id": None, "meta": {}}]}
    doc.update(changes)
    return doc


def no_temp_files(folder: Path) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def assert_quarantined(store: HistoryStore, path: Path, original: bytes, reason_part: str) -> None:
    """The broken file was moved aside intact, reported once, and a good file beside it migrated."""
    plant(store, valid_doc(), name="900d")
    assert [s.id for s in store.list_chats()] == ["900d"]
    assert not path.exists()
    moved = path.with_name(path.name + ".corrupt")
    assert moved.read_bytes() == original
    problems = store.take_problems()
    assert len(problems) == 1
    problem = problems[0]
    assert problem.path == path and reason_part in problem.reason and moved.name in problem.action
    store.list_chats()
    assert store.take_problems() == [], "reported once"
    again = HistoryStore(store.folder)
    again.list_chats()
    assert again.problems == [], "a quarantined file is not met again"
    assert (store.dir / "migrated" / "900d.json").is_file()
    assert again.load("900d").messages["m1"].content == "hi"


# ---- broken chat files: moved aside ----------------------------------------------------------

def test_truncated_json(store):
    full = json.dumps(valid_doc()).encode()
    path = plant(store, full[: len(full) // 2])
    assert_quarantined(store, path, full[: len(full) // 2], "not valid JSON")


def test_not_json(store):
    path = plant(store, b"this is not json at all")
    assert_quarantined(store, path, b"this is not json at all", "not valid JSON")


def test_not_utf8(store):
    data = b'{"schema": 1, "title": "\xff\xfe\xfa"}'
    path = plant(store, data)
    assert_quarantined(store, path, data, "not UTF-8")


def test_empty_file(store):
    path = plant(store, b"")
    assert_quarantined(store, path, b"", "not valid JSON")


def test_deeply_nested_json(store):
    data = b"[" * 200_000 + b"]" * 200_000
    path = plant(store, data)
    assert_quarantined(store, path, data, "JSON")


@pytest.mark.parametrize("doc, reason", [
    (valid_doc(messages="hello"), "'messages' field is not a list"),
    ([1, 2, 3], "does not contain a chat"),
    ({k: v for k, v in valid_doc().items() if k != "schema"}, "format version"),
    (valid_doc(schema="1"), "format version"),
    (valid_doc(schema=0), "format version"),
    (valid_doc(messages=[5]), "not an object"),
    (valid_doc(messages=[{"id": "m1", "role": "wizard", "content": "x"}]), "unknown role"),
    (valid_doc(messages=[{"id": "m1", "role": "user", "content": 12}]), "no text"),
    (valid_doc(messages=[{"id": 3, "role": "user", "content": "x"}]), "no valid id"),
    (valid_doc(messages=[{"id": "m1", "role": "user", "content": "x", "parent_id": "ghost"}]), "missing parent"),
    (valid_doc(messages=[{"id": "a", "role": "user", "content": "x", "parent_id": "b"},
                         {"id": "b", "role": "user", "content": "y", "parent_id": "a"}]), "cycle"),
    (valid_doc(messages=[{"id": "a", "role": "user", "content": "x"}] * 2), "appears twice"),
])
def test_wrong_structure_is_quarantined(store, doc, reason):
    data = json.dumps(doc).encode()
    path = plant(store, data)
    assert_quarantined(store, path, data, reason)


def test_wrong_cosmetic_types_are_repaired_not_refused(store):
    doc = valid_doc(title=12345, created="yesterday", updated=float("nan"), system_prompt=["x"],
                    settings="hot", selected=[1])
    doc["messages"][0]["meta"] = "not a dict"
    doc["messages"][0]["created"] = 1e300
    plant(store, json.dumps(doc), name="c0ffee")
    listed = store.list_chats()
    assert [(s.id, s.title) for s in listed] == [("c0ffee", "hi")]  # title made from the message
    chat = store.load("c0ffee")
    assert (chat.title, chat.system_prompt) == ("", None) and "settings" not in chat.to_dict()
    assert chat.messages["m1"].meta.to_dict() == {} and chat.id == "c0ffee"
    assert time.time() - chat.created < 60 and store.problems == []


def test_file_id_mismatch_uses_file_name(store):
    plant(store, json.dumps(valid_doc(id="someone-else")), name="abc123")
    chat = store.load("abc123")
    assert chat.id == "abc123"
    store.save(chat)
    assert [c.id for c in store.list_chats()] == ["abc123"]


def test_huge_file_is_refused_without_reading_it(store, monkeypatch):
    path = store.dir / "0badc0de.json"
    with open(path, "wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: 100 MB on paper, nothing on disk
    opened = []
    real_open = open
    monkeypatch.setattr(files_mod, "open", lambda p, *a, **k: opened.append(Path(p)) or real_open(p, *a, **k),
                        raising=False)
    assert store.list_chats() == []
    assert path not in opened
    moved = path.with_name("0badc0de.json.corrupt")
    assert moved.stat().st_size == 100 * 1024 * 1024
    assert "too large" in store.problems[0].reason
    with pytest.raises(StoreError):
        store.load("0badc0de")


def test_size_limit_is_configurable(store):
    plant(store, valid_doc(title="x" * 5000))
    small = HistoryStore(store.folder, max_file_bytes=1000)
    assert small.list_chats() == [] and "too large" in small.problems[0].reason
    big = Chat()
    big.append("user", "y" * 5000)
    small.save(big)  # the limit is for files read, not for chats in the database
    assert small.load(big.id) == big


def test_existing_corrupt_file_is_not_clobbered(store):
    earlier = store.dir / "0badc0de.json.corrupt"
    earlier.write_bytes(b"first casualty")
    for n, junk in enumerate([b"second", b"third"], start=1):
        plant(store, junk)
        s = HistoryStore(store.folder)
        s.list_chats()
        assert s.problems[0].action == f"moved to 0badc0de.json.corrupt.{n}"
    assert earlier.read_bytes() == b"first casualty"
    assert (store.dir / "0badc0de.json.corrupt.1").read_bytes() == b"second"
    assert (store.dir / "0badc0de.json.corrupt.2").read_bytes() == b"third"


def test_quarantine_that_fails_leaves_the_file_and_reports_it(store, monkeypatch):
    path = plant(store, b"garbage")
    def no_rename(*a):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(os, "rename", no_rename)
    assert store.list_chats() == []
    assert len(store.problems) == 1 and "could not be moved aside" in store.problems[0].action
    assert path.read_bytes() == b"garbage"


# ---- files left untouched and never overwritten ----------------------------------------------

def test_newer_schema_is_left_alone_and_never_overwritten(store):
    doc = valid_doc(schema=SCHEMA + 1, brand_new_field={"x": 1})
    path = plant(store, json.dumps(doc))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    good = good_chat(store)
    assert [c.id for c in store.list_chats()] == [good.id]
    assert len(store.problems) == 1
    assert "newer version" in store.problems[0].reason and store.problems[0].action == "left untouched"
    with pytest.raises(StoreError, match="no longer exists"):
        store.load("0badc0de")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    other = HistoryStore(store.folder)
    other.list_chats()
    assert len(other.problems) == 1, "each start reports it"
    assert not path.with_name(path.name + ".corrupt").exists() and path.exists()


def test_directory_named_like_a_chat(store):
    folder = store.dir / "deadbeef.json"
    folder.mkdir()
    (folder / "inside.txt").write_text("keep me")
    good = good_chat(store)
    assert [c.id for c in store.list_chats()] == [good.id]
    assert len(store.problems) == 1 and "folder" in store.problems[0].reason
    assert (folder / "inside.txt").read_text() == "keep me"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_does_not_hang(store):
    os.mkfifo(store.dir / "feedface.json")
    good = good_chat(store)
    assert [c.id for c in store.list_chats()] == [good.id]
    assert "not a regular file" in store.problems[0].reason


def deny_reading(monkeypatch, name: str) -> None:
    real_open = open
    def guarded_open(p, *a, **k):
        if Path(p).name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(p, *a, **k)
    monkeypatch.setattr(files_mod, "open", guarded_open, raising=False)


def check_unreadable_is_left_alone(store: HistoryStore, path: Path, original: bytes) -> None:
    good = good_chat(store)
    assert [c.id for c in store.list_chats()] == [good.id]
    assert len(store.problems) == 1
    assert "permission denied" in store.problems[0].reason and store.problems[0].action == "left untouched"
    assert path.exists() and not path.with_name(path.name + ".corrupt").exists()
    os.chmod(path, 0o644)
    assert path.read_bytes() == original


def test_unreadable_file_simulated(store, monkeypatch):
    data = json.dumps(valid_doc()).encode()
    path = plant(store, data)
    deny_reading(monkeypatch, path.name)
    check_unreadable_is_left_alone(store, path, data)
    monkeypatch.undo()  # permissions fixed: the next start imports it
    assert "0badc0de" in [c.id for c in HistoryStore(store.folder).list_chats()]


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root reads files whatever their mode")
def test_unreadable_file_real_permissions(store):
    data = json.dumps(valid_doc()).encode()
    path = plant(store, data)
    os.chmod(path, 0)
    check_unreadable_is_left_alone(store, path, data)


def test_utf8_bom_is_accepted(store):
    plant(store, b"\xef\xbb\xbf" + json.dumps(valid_doc()).encode(), name="b0b")
    assert store.load("b0b").messages["m1"].content == "hi"


def test_migration_that_cannot_write_moves_nothing(store, monkeypatch):
    path = plant(store, valid_doc(), name="900d")
    import chatgui.store.writer as writer_mod
    def failing(self, chats):
        raise StoreError("Could not save to history.sqlite3: the disk is full")
    monkeypatch.setattr(writer_mod.ChatWriter, "write_new", failing)
    with pytest.raises(StoreError, match="disk is full"):
        store.list_chats()
    assert path.is_file() and not (store.dir / "migrated").exists()
    monkeypatch.undo()
    assert [c.id for c in HistoryStore(store.folder).list_chats()] == ["900d"]


# ---- disk trouble while saving -----------------------------------------------------------

def saved_then_failing(store: HistoryStore) -> Chat:
    chat = good_chat(store, "the good version")
    chat.append("user", "a change that cannot be saved " * 1000)
    return chat


def check_save_failed_cleanly(store: HistoryStore, chat: Chat, message_part: str, exc_info) -> None:
    assert message_part in str(exc_info.value)
    assert isinstance(exc_info.value, OSError)
    fresh = HistoryStore(store.folder)
    assert [m.content for m in fresh.load(chat.id).active_path()] == ["the good version", "fine"]


def test_disk_full_during_write(store):
    chat = saved_then_failing(store)
    conn = store._w().conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own way to make the disk 'full'
    with pytest.raises(StoreError) as exc_info:
        store.save(chat)
    check_save_failed_cleanly(store, chat, "disk is full", exc_info)
    conn.execute("PRAGMA max_page_count=1073741823")
    store.save(chat)  # space freed: the retry succeeds
    assert "cannot be saved" in HistoryStore(store.folder).load(chat.id).active_path()[-1].content


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root may write anywhere")
def test_read_only_database_real_permissions(store):
    chat = saved_then_failing(store)
    store.close()
    files = [p for p in store.folder.iterdir() if p.name.startswith("history.sqlite3")]
    for p in files:
        os.chmod(p, 0o444)
    os.chmod(store.folder, 0o555)
    try:
        with pytest.raises(StoreError) as exc_info:
            HistoryStore(store.folder).save(chat)
        assert "history.sqlite3" in str(exc_info.value)
    finally:
        os.chmod(store.folder, 0o755)
        for p in files:
            os.chmod(p, 0o644)
    assert [m.content for m in HistoryStore(store.folder).load(chat.id).active_path()] == ["the good version", "fine"]


def test_data_folder_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    s = HistoryStore(blocker / "data")
    with pytest.raises(StoreError, match="data folder"):
        s.save(Chat())
    with pytest.raises(StoreError):
        s.list_chats()
    assert HistoryStore(tmp_path / "missing").list_chats() == []


def test_unserializable_meta_raises_store_error(store):
    chat = saved_then_failing(store)
    chat.active_path()[-1].meta.extra["bad"] = object()
    with pytest.raises(StoreError, match="cannot be saved") as exc_info:
        store.save(chat)
    check_save_failed_cleanly(store, chat, "cannot be saved", exc_info)


# ---- hostile settings files --------------------------------------------------------------

@pytest.mark.parametrize("junk", [b"{not json", b"\xff\xfe\x00", b'["a", "list"]', b"", b"null"])
def test_corrupt_settings_fall_back_to_defaults_and_are_moved_aside(tmp_path, junk):
    path = tmp_path / "settings.json"
    path.write_bytes(junk)
    problems: list[StoreProblem] = []
    assert load_settings(path, problems) == AppSettings()
    assert not path.exists() and (tmp_path / "settings.json.corrupt").read_bytes() == junk
    assert len(problems) == 1 and "settings.json.corrupt" in problems[0].action
    save_settings(AppSettings(theme="dark"), path)
    assert load_settings(path).theme == "dark"


def test_huge_settings_file(tmp_path):
    path = tmp_path / "settings.json"
    with open(path, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    problems = []
    assert load_settings(path, problems) == AppSettings()
    assert "too large" in problems[0].reason


def test_unreadable_settings_use_defaults_and_stay(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"theme": "dark"}))
    deny_reading(monkeypatch, "settings.json")
    problems = []
    assert load_settings(path, problems) == AppSettings()
    assert path.exists() and "permission denied" in problems[0].reason


def test_settings_path_is_a_folder(tmp_path):
    path = tmp_path / "settings.json"
    path.mkdir()
    problems = []
    assert load_settings(path, problems) == AppSettings() and path.is_dir()
    with pytest.raises(StoreError):
        save_settings(AppSettings(), path)
    assert no_temp_files(tmp_path)


def test_settings_save_failure_is_store_error(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    save_settings(AppSettings(theme="light"), path)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(StoreError, match="disk is full"):
        save_settings(AppSettings(theme="dark"), path)
    monkeypatch.undo()
    assert load_settings(path).theme == "light" and no_temp_files(tmp_path)


def test_atomic_write_into_missing_folder_is_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "x.json", "{}")

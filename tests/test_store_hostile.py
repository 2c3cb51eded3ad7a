"""Hostile chat and settings files, and disk trouble: nothing may crash the app, lose a good
file, or be overwritten without having been read."""
from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

import chatgui.store.files as files_mod
from chatgui.store import (AppSettings, Chat, HistoryStore, StoreError, StoreProblem,
                           atomic_write_text, load_settings, save_settings)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def store(tmp_path, monkeypatch):
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
    """The broken file was moved aside intact, reported once, and the good chats still load."""
    good = good_chat(store)
    fresh = HistoryStore(store.dir)
    assert [s.id for s in fresh.list_chats()] == [good.id]
    assert not path.exists()
    moved = path.with_name(path.name + ".corrupt")
    assert moved.read_bytes() == original
    assert len(fresh.problems) == 1
    problem = fresh.problems[0]
    assert problem.path == path and reason_part in problem.reason and moved.name in problem.action
    fresh.list_chats()
    assert len(fresh.problems) == 1, "reported once"
    again = HistoryStore(store.dir)
    again.list_chats()
    assert again.problems == [], "a quarantined file is not met again"
    assert fresh.load(good.id) == good


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
    assert (chat.title, chat.system_prompt, chat.settings) == ("", None, None)
    assert chat.messages["m1"].meta == {} and chat.id == "c0ffee"
    assert time.time() - chat.created < 60 and store.problems == []


def test_file_id_mismatch_uses_file_name(store):
    plant(store, json.dumps(valid_doc(id="someone-else")), name="abc123")
    chat = store.load("abc123")
    assert chat.id == "abc123"
    store.save(chat)
    assert sorted(os.listdir(store.dir)) == ["abc123.json"]


def test_huge_file_is_refused_without_reading_it(store, monkeypatch):
    path = store.dir / "0badc0de.json"
    with open(path, "wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: 100 MB on paper, nothing on disk
    opened = []
    real_open = open
    monkeypatch.setattr(files_mod, "open", lambda p, *a, **k: opened.append(Path(p)) or real_open(p, *a, **k),
                        raising=False)
    start = time.perf_counter()
    fresh = HistoryStore(store.dir)
    assert fresh.list_chats() == []
    assert time.perf_counter() - start < 1.0
    assert path not in opened
    moved = path.with_name("0badc0de.json.corrupt")
    assert moved.stat().st_size == 100 * 1024 * 1024
    assert "too large" in fresh.problems[0].reason
    with pytest.raises(StoreError):
        fresh.load("0badc0de")


def test_size_limit_is_configurable(store):
    chat = good_chat(store, "x" * 5000)
    small = HistoryStore(store.dir, max_file_bytes=1000)
    assert small.list_chats() == [] and "too large" in small.problems[0].reason
    big = Chat()
    big.append("user", "y" * 5000)
    with pytest.raises(StoreError, match="too large"):
        small.save(big)
    assert not small.path_for(big.id).exists()
    assert Path(str(small.path_for(chat.id)) + ".corrupt").exists()


def test_existing_corrupt_file_is_not_clobbered(store):
    earlier = store.dir / "0badc0de.json.corrupt"
    earlier.write_bytes(b"first casualty")
    for n, junk in enumerate([b"second", b"third"], start=1):
        plant(store, junk)
        s = HistoryStore(store.dir)
        s.list_chats()
        assert s.problems[0].action == f"moved to 0badc0de.json.corrupt.{n}"
    assert earlier.read_bytes() == b"first casualty"
    assert (store.dir / "0badc0de.json.corrupt.1").read_bytes() == b"second"
    assert (store.dir / "0badc0de.json.corrupt.2").read_bytes() == b"third"


def test_load_of_corrupt_file_quarantines_and_raises(store):
    plant(store, b"{nope")
    with pytest.raises(StoreError, match="not valid JSON"):
        store.load("0badc0de")
    assert (store.dir / "0badc0de.json.corrupt").exists()
    assert store.take_problems()[0].path.name == "0badc0de.json"
    assert store.problems == []


def test_quarantine_that_fails_leaves_file_blocks_saving_and_reports_once(store, monkeypatch):
    path = plant(store, b"garbage")
    def no_rename(*a):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(os, "rename", no_rename)
    store.list_chats()
    store.list_chats()
    assert len(store.problems) == 1 and "could not be moved aside" in store.problems[0].action
    chat = Chat()
    chat.id = "0badc0de"
    with pytest.raises(StoreError, match="could not be read"):
        store.save(chat)
    assert path.read_bytes() == b"garbage"


# ---- files left untouched and never overwritten ----------------------------------------------

def test_newer_schema_is_left_alone_and_never_overwritten(store):
    doc = valid_doc(schema=2, brand_new_field={"x": 1})
    path = plant(store, json.dumps(doc))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    good = good_chat(store)
    s = HistoryStore(store.dir)
    assert [c.id for c in s.list_chats()] == [good.id]
    s.list_chats()
    assert len(s.problems) == 1
    assert "newer version" in s.problems[0].reason and s.problems[0].action == "left untouched"
    with pytest.raises(StoreError, match="newer version"):
        s.load("0badc0de")
    assert len(s.problems) == 1
    intruder = Chat()
    intruder.id = "0badc0de"
    intruder.append("user", "overwrite?")
    with pytest.raises(StoreError):
        s.save(intruder)
    with pytest.raises(StoreError):
        HistoryStore(store.dir).save(intruder)  # a store that never listed checks before writing
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    other = HistoryStore(store.dir)
    other.list_chats()
    assert len(other.problems) == 1, "each store reports it once"
    assert not path.with_name(path.name + ".corrupt").exists()


def test_directory_named_like_a_chat(store):
    good = good_chat(store)
    folder = store.dir / "deadbeef.json"
    folder.mkdir()
    (folder / "inside.txt").write_text("keep me")
    assert [c.id for c in store.list_chats()] == [good.id]
    store.list_chats()
    assert len(store.problems) == 1 and "folder" in store.problems[0].reason
    with pytest.raises(StoreError):
        store.load("deadbeef")
    chat = Chat()
    chat.id = "deadbeef"
    with pytest.raises(StoreError):
        store.save(chat)
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
    store.list_chats()
    assert len(store.problems) == 1
    assert "permission denied" in store.problems[0].reason and store.problems[0].action == "left untouched"
    with pytest.raises(StoreError):
        store.load(path.stem)
    chat = Chat()
    chat.id = path.stem
    with pytest.raises(StoreError):
        store.save(chat)
    assert path.exists() and not path.with_name(path.name + ".corrupt").exists()
    os.chmod(path, 0o644)
    assert path.read_bytes() == original


def test_unreadable_file_simulated(store, monkeypatch):
    data = json.dumps(valid_doc()).encode()
    path = plant(store, data)
    deny_reading(monkeypatch, path.name)
    check_unreadable_is_left_alone(store, path, data)
    monkeypatch.undo()  # permissions fixed: the chat comes back and may be saved again
    assert "0badc0de" in [c.id for c in store.list_chats()]
    store.save(store.load("0badc0de"))


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root reads files whatever their mode")
def test_unreadable_file_real_permissions(store):
    data = json.dumps(valid_doc()).encode()
    path = plant(store, data)
    os.chmod(path, 0)
    check_unreadable_is_left_alone(store, path, data)


# ---- disk trouble while saving -----------------------------------------------------------

def saved_then_failing(store: HistoryStore) -> tuple[Chat, bytes]:
    chat = good_chat(store, "the good version")
    original = store.path_for(chat.id).read_bytes()
    chat.append("user", "a change that cannot be saved " * 1000)
    return chat, original


def check_save_failed_cleanly(store, chat, original, message_part, exc_info) -> None:
    assert message_part in str(exc_info.value)
    assert store.path_for(chat.id).read_bytes() == original
    assert no_temp_files(store.dir)
    assert HistoryStore(store.dir).load(chat.id).active_path()[0].content == "the good version"


def test_disk_full_during_write(store, monkeypatch):
    chat, original = saved_then_failing(store)
    real_write = os.write
    calls = []
    def half_then_enospc(fd, data):
        calls.append(fd)
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a half-written temp file
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(StoreError) as exc_info:
        store.save(chat)
    monkeypatch.undo()
    assert len(calls) == 2 and exc_info.value.errno == errno.ENOSPC
    assert isinstance(exc_info.value, OSError)
    check_save_failed_cleanly(store, chat, original, "disk is full", exc_info)
    store.save(chat)  # space freed: the retry succeeds
    assert "cannot be saved" in store.path_for(chat.id).read_text(encoding="utf-8")


@pytest.mark.parametrize("call", ["replace", "fsync"])
def test_replace_or_fsync_failure(store, monkeypatch, call):
    chat, original = saved_then_failing(store)
    def broken(*a):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(os, call, broken)
    with pytest.raises(StoreError) as exc_info:
        store.save(chat)
    monkeypatch.undo()
    check_save_failed_cleanly(store, chat, original, "Input/output error", exc_info)


def test_interrupted_write_leaves_no_temp(store, monkeypatch):
    chat, original = saved_then_failing(store)
    def interrupted(fd, data):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.save(chat)
    monkeypatch.undo()
    assert store.path_for(chat.id).read_bytes() == original and no_temp_files(store.dir)


def test_read_only_folder_simulated(store, monkeypatch):
    chat, original = saved_then_failing(store)
    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(StoreError) as exc_info:
        store.save(chat)
    monkeypatch.undo()
    check_save_failed_cleanly(store, chat, original, "read-only", exc_info)


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root may write anywhere")
def test_read_only_folder_real_permissions(store):
    chat, original = saved_then_failing(store)
    os.chmod(store.dir, 0o555)
    try:
        with pytest.raises(StoreError) as exc_info:
            store.save(chat)
    finally:
        os.chmod(store.dir, 0o755)
    check_save_failed_cleanly(store, chat, original, "permission denied", exc_info)


def test_chats_folder_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    s = HistoryStore(blocker / "chats")
    with pytest.raises(StoreError, match="chats folder"):
        s.save(Chat())
    with pytest.raises(StoreError):
        s.list_chats()
    assert HistoryStore(tmp_path / "missing").list_chats() == []


def test_unserializable_meta_raises_store_error(store):
    chat, original = saved_then_failing(store)
    chat.active_path()[-1].meta["bad"] = object()
    with pytest.raises(StoreError, match="cannot be saved"):
        store.save(chat)
    assert store.path_for(chat.id).read_bytes() == original


def test_corrupt_index_is_ignored_and_rebuilt(store):
    good = good_chat(store)
    for junk in (b"{broken", b'{"schema": 1, "entries": {"x.json": "oops"}}', b"\xff"):
        (store.dir / ".index.json").write_bytes(junk)
        s = HistoryStore(store.dir)
        assert [c.id for c in s.list_chats()] == [good.id] and s.problems == []
        assert json.loads((store.dir / ".index.json").read_text())["schema"] == 1


def test_index_lying_about_a_changed_file_is_not_trusted(store):
    chat = good_chat(store)
    HistoryStore(store.dir).list_chats()
    path = store.path_for(chat.id)
    path.write_bytes(b"garbage now")  # mtime and size change: the cached summary is not used
    s = HistoryStore(store.dir)
    assert s.list_chats() == [] and "not valid JSON" in s.problems[0].reason


def test_search_survives_a_file_broken_after_listing(store, monkeypatch):
    good = good_chat(store, "needle here")
    bad = good_chat(store, "other")
    store.list_chats()
    store.path_for(bad.id).write_bytes(b"\x00garbage")
    assert store.search("needle") == [good.id]
    assert any(p.path.name == f"{bad.id}.json" for p in store.problems)


def test_utf8_bom_is_accepted(store):
    plant(store, b"\xef\xbb\xbf" + json.dumps(valid_doc()).encode(), name="b0b")
    assert store.load("b0b").messages["m1"].content == "hi"


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

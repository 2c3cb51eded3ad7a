"""Hostile files given to Import chats (issue 29, case 5): a ChatGPT export shaped to make the
walk over skipped nodes quadratic, a zlib bomb in a chatgui export's packed token records, fields
of the wrong type, and an import the closing window must be able to stop."""
from __future__ import annotations

import base64
import json
import threading
import time
import tracemalloc
import zlib

import pytest

from chatgui.store import HistoryStore, StoreError
from chatgui.store import importers
from chatgui.store.importers import ImportCancelled, from_chatgpt


def node(nid, parent, children, role=None, text=""):
    msg = None if role is None else {"id": nid, "author": {"role": role}, "create_time": 1700000000.0,
                                     "content": {"content_type": "text", "parts": [text]}}
    return {"id": nid, "message": msg, "parent": parent, "children": children}


def skipped_chain_then_leaves(skipped: int, kept: int) -> dict:
    """`skipped` nodes without text one under another (tool calls, hidden system nodes), then
    `kept` user messages hanging under the last of them: each of those used to walk the whole
    chain up again to find the message to hang on."""
    mapping = {"root": node("root", None, ["s0"])}
    for i in range(skipped):
        mapping[f"s{i}"] = node(f"s{i}", "root" if i == 0 else f"s{i - 1}", [f"s{i + 1}"] if i + 1 < skipped else [])
    last = f"s{skipped - 1}"
    for j in range(kept):
        mapping[f"k{j}"] = node(f"k{j}", last, [], "user", f"message {j}")
        mapping[last]["children"].append(f"k{j}")
    return {"title": "deep", "create_time": 1700000000.0, "mapping": mapping, "current_node": f"k{kept - 1}"}


class CountingDict(dict):
    """A mapping that counts how often the importer looks a node up."""

    def __init__(self, *args):
        super().__init__(*args)
        self.lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


def test_the_walk_over_skipped_nodes_is_done_once_per_node():
    conv = skipped_chain_then_leaves(2000, 2000)
    conv["mapping"] = CountingDict(conv["mapping"])
    chat = from_chatgpt(conv)
    assert len(chat.messages) == 2000
    assert all(m.parent_id is None for m in chat.messages.values())   # nothing kept above them
    n = len(conv["mapping"])
    # Before: each of the 2,000 messages walked the 2,000-node chain (4M lookups).
    assert conv["mapping"].lookups < 5 * n, conv["mapping"].lookups


def test_a_deep_export_of_megabytes_imports_in_seconds(tmp_path):
    """About 2 MB: 100M lookups before (a minute and more); now a fraction of a second."""
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([skipped_chain_then_leaves(10_000, 10_000)]), encoding="utf-8")
    store = HistoryStore(tmp_path / "data")
    t0 = time.perf_counter()
    [chat_id] = store.import_file(path)
    assert time.perf_counter() - t0 < 20
    assert len(store.load(chat_id).messages) == 10_000


def test_kept_messages_still_hang_on_their_nearest_kept_ancestor():
    mapping = {"r": node("r", None, ["q"]), "q": node("q", "r", ["t1"], "user", "question"),
               "t1": node("t1", "q", ["t2"]), "t2": node("t2", "t1", ["a", "b"]),
               "a": node("a", "t2", [], "assistant", "first"), "b": node("b", "t2", ["c"], "assistant", "second"),
               "c": node("c", "b", [], "user", "thanks")}
    chat = from_chatgpt({"mapping": mapping, "current_node": "c"})
    by_text = {m.content: m for m in chat.messages.values()}
    assert by_text["first"].parent_id == by_text["second"].parent_id == by_text["question"].id
    assert by_text["thanks"].parent_id == by_text["second"].id
    assert [m.content for m in chat.active_path()] == ["question", "second", "thanks"]


def test_an_import_can_be_cancelled_and_writes_nothing(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([skipped_chain_then_leaves(10, 3000)] * 3), encoding="utf-8")
    store = HistoryStore(tmp_path / "data")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ImportCancelled, match="cancelled"):
        store.import_file(path, cancel)
    assert store.list_chats() == []
    # One big conversation: the walk itself looks at the flag as it goes.
    looked = []

    class Flag:
        def is_set(self):
            looked.append(1)
            return len(looked) > 1   # not at the start: in the middle of the walk

    with pytest.raises(ImportCancelled):
        importers.read_import(path, 1 << 30, Flag())
    assert store.list_chats() == []


@pytest.mark.parametrize("change, words", [
    (lambda m: m["k1"].update(parent=["s1"]), "parent that is not an id"),
    (lambda m: m["k1"].update(parent={"id": "s1"}), "parent that is not an id"),
    (lambda m: m["s1"].update(children={"k1": 1}), "children that are not a list"),
])
def test_fields_of_the_wrong_type_are_not_a_valid_export(tmp_path, change, words):
    conv = skipped_chain_then_leaves(3, 3)
    change(conv["mapping"])
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([conv]), encoding="utf-8")
    with pytest.raises(StoreError, match=f"not a valid ChatGPT export.*{words}"):
        HistoryStore(tmp_path / "data").import_file(path)


def test_a_current_node_that_is_not_an_id_is_not_a_valid_export(tmp_path):
    conv = skipped_chain_then_leaves(3, 3)
    conv["current_node"] = ["k1"]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conv), encoding="utf-8")
    with pytest.raises(StoreError, match="not a valid ChatGPT export"):
        HistoryStore(tmp_path / "data").import_file(path)


def test_a_zlib_bomb_in_packed_token_records_is_imported_without_them(tmp_path):
    """200 MB of zeros packed into 200 KB: unpacked whole before (389 KB of base64 could ask for
    7.5 GB: MemoryError); now unpacking stops at its limit and the reply comes without records."""
    packer, zeros = zlib.compressobj(9), bytes(1 << 20)
    bomb = b"J" + b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()
    doc = {"schema": 2, "id": "bomb", "title": "t", "created": 1.0, "updated": 2.0, "messages": [
        {"id": "m1", "role": "user", "content": "hi", "created": 1.0, "parent_id": None, "meta": {}},
        {"id": "m2", "role": "assistant", "content": "hello", "created": 2.0, "parent_id": "m1",
         "meta": {"token_data_packed": base64.b64encode(bomb).decode("ascii"), "model": "x"}}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    store = HistoryStore(tmp_path / "data")
    tracemalloc.start()
    try:
        [chat_id] = store.import_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20, f"{peak / 2**20:.0f} MB allocated at once"   # the limit (32 MB), copied once
    reply = store.load(chat_id).messages["m2"]
    assert reply.content == "hello" and reply.reply_meta.model == "x"
    assert not reply.reply_meta.token_data


def test_closing_the_window_cancels_an_import_under_way(qtbot, make_window, tmp_path, monkeypatch):
    """The window joins its jobs when it closes: an import reading a huge file held the exit."""
    window = make_window(wait_model=False)
    seen = {}

    def reading_a_huge_file(path, cancel=None, same_title=None):
        seen["cancel"] = cancel
        seen["cancelled"] = cancel.wait(30)   # True as soon as the flag is set
        raise ImportCancelled("The import was cancelled; nothing was imported.")

    monkeypatch.setattr(window.library.store, "import_file", reading_a_huge_file)
    window.history_actions.import_chats(str(tmp_path / "conversations.json"))
    qtbot.waitUntil(lambda: "cancel" in seen, timeout=10_000)
    t0 = time.perf_counter()
    window.close()
    assert seen.get("cancelled") is True and time.perf_counter() - t0 < 10

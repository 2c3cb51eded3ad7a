"""The store's normal behaviour: paths, atomic writes, the branching chat model, history,
search, export and settings. Hostile files and disk trouble are in test_store_hostile.py."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import FinishReason, ReplyMeta, TokenRecord
from chatgui.common.types import SamplingSettings
from chatgui.store import (AppSettings, HistoryStore, StoreError, atomic_write_bytes, atomic_write_text,
                           export_json, export_markdown, load_settings, save_settings)
from chatgui.session import Chat
from chatgui.common import paths


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    data, config = tmp_path / "data", tmp_path / "config"
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(data))
    monkeypatch.setenv("CHATGUI_CONFIG_DIR", str(config))
    return data, config


@pytest.fixture
def store(dirs):
    return HistoryStore()


def make_chat(turns: int = 3, title: str = "", first: str = "Hello there") -> Chat:
    chat = Chat(title=title, system_prompt="You are helpful.")
    for i in range(turns):
        chat.append("user", first if i == 0 else f"question {i}")
        chat.append("assistant", f"answer {i}", meta={"model": "tiny", "seed": i, "tokens": 3})
    return chat


def contents(path_msgs) -> list[str]:
    return [m.content for m in path_msgs]


def test_store_imports_neither_qt_nor_torch():
    code = ("import sys, chatgui.store; bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ---- paths -------------------------------------------------------------------------------

def test_paths_follow_env_vars_and_create_folders_lazily(dirs):
    data, config = dirs
    assert not data.exists() and not config.exists()
    assert paths.chats_dir() == data / "chats" and (data / "chats").is_dir()
    assert paths.models_dir() == data / "models" and (data / "models").is_dir()
    assert paths.config_dir() == config and config.is_dir()
    assert paths.settings_path() == config / "settings.json"


def test_paths_default_to_platformdirs(tmp_path, monkeypatch):
    monkeypatch.delenv("CHATGUI_DATA_DIR", raising=False)
    monkeypatch.delenv("CHATGUI_CONFIG_DIR", raising=False)
    asked = []
    monkeypatch.setattr(paths.platformdirs, "user_data_dir",
                        lambda app, appauthor=None: asked.append(app) or str(tmp_path / "pd-data"))
    monkeypatch.setattr(paths.platformdirs, "user_config_dir",
                        lambda app, appauthor=None: asked.append(app) or str(tmp_path / "pd-config"))
    assert paths.data_dir() == tmp_path / "pd-data"
    assert paths.config_dir() == tmp_path / "pd-config"
    assert asked == ["chatgui", "chatgui"]


def test_paths_do_not_raise_when_folder_cannot_be_created(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(blocker / "data"))
    assert paths.chats_dir() == blocker / "data" / "chats"  # the first save reports the trouble


# ---- atomic writes -----------------------------------------------------------------------

def test_atomic_write_replaces_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    target.write_text("old")
    temps = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: temps.append(Path(s)) or real_replace(s, d))
    atomic_write_text(target, "new ü")
    assert target.read_text(encoding="utf-8") == "new ü"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["a.json"]
    assert all(t.parent == tmp_path and t.name.startswith(".") and t.name.endswith(".tmp") for t in temps)
    assert len(temps) == 2


# ---- the chat tree -----------------------------------------------------------------------

def test_linear_chat_and_model_messages():
    chat = make_chat(2)
    assert [m.role for m in chat.active_path()] == ["user", "assistant"] * 2
    assert chat.to_messages_for_model() == [
        PromptMessage.system("You are helpful."),
        PromptMessage.user("Hello there"), PromptMessage.assistant("answer 0"),
        PromptMessage.user("question 1"), PromptMessage.assistant("answer 1"),
    ]
    chat.system_prompt = ""
    assert chat.to_messages_for_model()[0] == PromptMessage.user("Hello there")
    chat.system_prompt = None
    assert len(chat.to_messages_for_model()) == 4


def test_regenerate_keeps_candidates_browsable():
    chat = Chat()
    user = chat.append("user", "Tell me a joke")
    first = chat.add_message(user.id, "assistant", "joke A")
    second = chat.add_message(user.id, "assistant", "joke B")  # regenerate
    third = chat.add_message(user.id, "assistant", "joke C")
    assert [m.id for m in chat.siblings(second.id)] == [first.id, second.id, third.id]
    assert chat.sibling_index(third.id) == (2, 3)
    assert contents(chat.active_path()) == ["Tell me a joke", "joke C"]
    chat.select(first.id)
    assert chat.sibling_index(first.id) == (0, 3)
    assert contents(chat.active_path()) == ["Tell me a joke", "joke A"]
    fourth = chat.add_message(user.id, "assistant", "joke D")  # regenerating shows the new one
    assert contents(chat.active_path()) == ["Tell me a joke", "joke D"]
    assert chat.sibling_index(fourth.id) == (3, 4)
    # the prompt for another regeneration stops at the user message
    assert chat.to_messages_for_model(upto=user.id)[-1] == PromptMessage.user("Tell me a joke")


def test_edit_and_resend_branches_and_keeps_old_branch():
    chat = Chat()
    q1 = chat.append("user", "What is 2+2?")
    chat.append("assistant", "4")
    q2 = chat.append("user", "And 3+3?")
    a2 = chat.append("assistant", "6")
    chat.append("user", "thanks")
    edited = chat.add_message(q2.parent_id, "user", "And 3*3?")  # edit q2 and resend
    chat.append("assistant", "9")
    assert contents(chat.active_path()) == ["What is 2+2?", "4", "And 3*3?", "9"]
    assert chat.sibling_index(edited.id) == (1, 2)
    chat.select(q2.id)  # browse back: the old branch is whole, down to its last message
    assert contents(chat.active_path()) == ["What is 2+2?", "4", "And 3+3?", "6", "thanks"]
    chat.select(edited.id)
    assert contents(chat.active_path())[-1] == "9"
    assert len(chat.messages) == 7 and chat.path_to(a2.id)[0] is q1


def test_select_deep_message_selects_its_ancestors():
    chat = Chat()
    root_a = chat.append("user", "A")
    deep = chat.append("assistant", "A-reply")
    chat.add_message(None, "user", "B")  # edit of the first message: a second top-level branch
    chat.append("assistant", "B-reply")
    assert contents(chat.active_path()) == ["B", "B-reply"]
    chat.select(deep.id)
    assert contents(chat.active_path()) == ["A", "A-reply"]
    assert chat.sibling_index(root_a.id) == (0, 2)


def test_update_content_merges_meta_and_bumps_updated():
    chat = Chat(created=1000.0)
    user = chat.append("user", "hi")
    reply = chat.add_message(user.id, "assistant", "", meta={"model": "m"})
    chat.updated = 1000.0
    chat.update_content(reply.id, "Hel")
    chat.update_content(reply.id, "Hello!", meta=ReplyMeta(finish_reason=FinishReason.STOP, tokens=2))
    assert reply.content == "Hello!"
    assert reply.meta.to_dict() == {"model": "m", "finish_reason": "stop", "tokens": 2}
    assert chat.updated > 1000.0


def test_remove_deletes_subtree_and_falls_back_to_other_candidate():
    chat = Chat()
    user = chat.append("user", "q")
    keep = chat.add_message(user.id, "assistant", "kept")
    gone = chat.add_message(user.id, "assistant", "failed")
    chat.append("user", "follow-up under the failed one")
    chat.remove(gone.id)
    assert len(chat.messages) == 2
    assert contents(chat.active_path()) == ["q", "kept"]
    assert gone.id not in chat.selected.values()
    assert chat.siblings(keep.id) == [keep]
    with pytest.raises(KeyError):
        chat.remove("nope")


def test_add_message_rejects_unknown_parent_and_role():
    chat = Chat()
    with pytest.raises(KeyError):
        chat.add_message("missing", "user", "x")
    with pytest.raises(ValueError):
        chat.add_message(None, "wizard", "x")


@pytest.mark.parametrize("text, expected", [
    ("Hello", "Hello"),
    ("  multi\nline\n\tquestion  ", "multi line question"),
    ("Please summarise the following paragraph about photosynthesis",
     "Please summarise the following…"),  # cut at a word
    ("x" * 100, "x" * 39 + "…"),
    ("为什么天空是蓝色的" * 10, ("为什么天空是蓝色的" * 10)[:39] + "…"),
])
def test_title_from_first_message(text, expected):
    chat = Chat()
    chat.append("system", "ignored")
    chat.append("user", text)
    chat.append("user", "second")
    title = chat.title_from_first_message()
    assert title == expected
    assert len(title) <= 40 and "\n" not in title


def test_title_from_first_message_without_user_message():
    assert Chat().title_from_first_message() == ""


# ---- history: save, load, list -----------------------------------------------------------

def test_round_trip_keeps_tree_selection_and_meta(store):
    chat = make_chat(2, title="Round trip")
    user = chat.active_path()[-2]
    token_data = [TokenRecord(5, "Hé", 0.5, ((5, "Hé", 0.5), (7, "你", 0.25)))]
    alt = chat.add_message(user.id, "assistant", "другой ответ 🙂",
                           meta={"token_data": token_data, "model_sha256": "ab" * 32, "seed": 42})
    chat.select(chat.siblings(alt.id)[0].id)
    store.save(chat)
    loaded = HistoryStore(store.folder).load(chat.id)
    assert loaded == chat
    assert loaded.messages[alt.id].reply_meta.token_data == token_data
    assert contents(loaded.active_path()) == contents(chat.active_path())
    assert sorted(p.name for p in store.folder.iterdir() if not p.name.startswith("history.sqlite3")) == ["backups"]


def test_token_records_load_lazily_and_survive_a_save_without_them(store):
    chat = make_chat(2)
    reply = chat.active_path()[-1]
    tokens = [TokenRecord(i, f"t{i}", 0.5, ((i, f"t{i}", 0.5),), 0.25, ((i, f"t{i}", 0.25),)) for i in range(50)]
    chat.update_content(reply.id, reply.content, ReplyMeta(token_data=tokens))
    store.save(chat)
    light = HistoryStore(store.folder).load(chat.id, tokens=False)
    assert light.messages[reply.id].reply_meta.token_data is None
    light.title = "renamed without the token records in memory"
    HistoryStore(store.folder).save(light)
    assert store.load_tokens(chat.id, reply.id) == tokens
    assert HistoryStore(store.folder).load(chat.id).messages[reply.id].reply_meta.token_data == tokens
    assert store.load_tokens(chat.id, chat.active_path()[0].id) == []


def test_save_lone_surrogate_round_trips(store):
    chat = Chat(title="bad \udc80 title")
    chat.append("user", "broken \ud800 text", meta={"note": "\udfff"})
    store.save(chat)
    loaded = HistoryStore(store.folder).load(chat.id)
    assert loaded.active_path()[0].content == "broken \ud800 text"
    assert loaded.active_path()[0].meta.to_dict() == {"note": "\udfff"} and loaded.title == chat.title
    assert store.search("broken") == [chat.id]


def test_list_newest_first_with_summaries(store):
    old, new, untitled = make_chat(1, title="Old"), make_chat(1, title="New"), make_chat(1, first="Name me")
    old.updated, new.updated, untitled.updated = 100.0, 300.0, 200.0
    for c in (old, new, untitled):
        store.save(c)
    listed = HistoryStore(store.folder).list_chats()
    assert [(s.id, s.title, s.updated) for s in listed] == [
        (new.id, "New", 300.0), (untitled.id, "Name me", 200.0), (old.id, "Old", 100.0)]
    assert listed[0].path == store.db_path
    assert store.list_chats() == listed


def traced(store) -> list[str]:
    """The SQL statements the store runs from now on (reads on this thread, and all writes)."""
    statements: list[str] = []
    store._r().set_trace_callback(statements.append)
    store._w().conn.set_trace_callback(statements.append)
    return statements


def test_listing_reads_only_the_chat_table(store):
    for i in range(20):
        store.save(make_chat(4, first=f"chat number {i}"))
    fresh = HistoryStore(store.folder)
    statements = traced(fresh)
    assert len(fresh.list_chats()) == 20
    assert statements and not [s for s in statements if "messages" in s or "token_records" in s]


def test_streamed_update_writes_one_message_row(store):
    chat = make_chat(25)
    reply = chat.active_path()[-1]
    store.save(chat)
    statements = traced(store)
    for i in range(1, 4):
        chat.update_content(reply.id, "streamed text " * i, ReplyMeta(token_data=[TokenRecord(t, "", 0.5) for t in range(i)]))
        store.save_async(chat)
        store.flush()
    message_writes = {s for s in statements if s.startswith(("INSERT INTO messages", "UPDATE messages",
                                                             "DELETE FROM messages"))}  # (a trigger repeats one)
    assert len(message_writes) == 3 and all("content='streamed text " in s for s in message_writes)
    assert HistoryStore(store.folder).load(chat.id).messages[reply.id].content == "streamed text " * 3


def test_saves_by_another_store_are_not_overwritten_or_lost(store):
    chat = make_chat(1, title="Before")
    store.save(chat)
    other = HistoryStore(store.folder)
    theirs = other.load(chat.id)
    added = theirs.append("user", "written by another store")
    other.save(theirs)
    chat.title = "Later"  # this store's rows for the chat are stale now: it must notice
    chat.append("user", "written by the first store")
    store.save(chat)
    final = HistoryStore(store.folder).load(chat.id)
    assert final.title == "Later" and added.id not in final.messages
    assert contents(final.active_path())[-1] == "written by the first store"
    assert store.list_chats()[0].title == "Later"


def test_save_async_returns_at_once_and_reports(store):
    chat = make_chat(1)
    done = []
    store.save_async(chat, on_done=lambda chat_id, error: done.append((chat_id, error)))
    store.save_async(chat, on_done=lambda chat_id, error: done.append((chat_id, error)))
    assert store.flush(10)
    assert done and all(d == (chat.id, None) for d in done)
    bad = make_chat(1)
    bad.active_path()[-1].meta.extra["x"] = object()
    store.save_async(bad)
    store.flush(10)
    problems = store.take_problems()
    assert len(problems) == 1 and "cannot be saved" in problems[0].reason
    assert [s.id for s in store.list_chats()] == [chat.id]


def test_close_writes_what_is_queued(store):
    chat = make_chat(3)
    store.save_async(chat)
    store.close()
    assert HistoryStore(store.folder).load(chat.id) == chat


def test_delete(store):
    a, b = make_chat(1), make_chat(1)
    store.save(a)
    store.save(b)
    store.delete(a.id)
    assert [s.id for s in store.list_chats()] == [b.id]
    store.delete(a.id)  # already gone: no error
    with pytest.raises(StoreError):
        store.load(a.id)
    assert store.search("answer") == [b.id]  # its words left the search index too


def test_removing_a_branch_deletes_its_rows(store):
    chat = make_chat(3)
    doomed = chat.active_path()[2]
    store.save(chat)
    chat.remove(doomed.id)
    store.save(chat)
    assert HistoryStore(store.folder).load(chat.id) == chat
    assert store.search("question 1") == []


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "", "x" * 65, "dot.json", None])
def test_invalid_chat_ids_are_refused(store, bad_id):
    for call in (store.load, store.delete):
        with pytest.raises(StoreError):
            call(bad_id)
    chat = Chat()
    chat.id = bad_id
    with pytest.raises(StoreError):
        store.save(chat)
    assert store.list_chats() == []


# ---- search and export -------------------------------------------------------------------

def test_search_titles_and_all_branches(store):
    cooking = make_chat(1, title="Cooking pasta")
    physics = Chat(title="Physics")
    q = physics.append("user", "Why is the sky blue?")
    physics.append("assistant", "Rayleigh SCATTERING.")
    physics.add_message(q.id, "assistant", "Because of ßtraße light")
    physics.select(physics.siblings(q.id)[0].id)  # that candidate is no longer shown
    other = make_chat(1, title="Other")
    for c in (cooking, physics, other):
        store.save(c)
    assert store.search("PASTA") == [cooking.id]
    assert store.search("scattering") == [physics.id]
    assert store.search("STRASSE") == [physics.id]  # casefold, not just lower()
    assert store.search("nothing like this") == []
    assert store.search('say "hi"') == []  # quotes are text, not query syntax
    assert sorted(store.search("")) == sorted([cooking.id, physics.id, other.id])
    assert store.search("answer 0") == [c.id for c in store.list_chats() if c.id in (cooking.id, other.id)]
    assert store.search("sk") == [physics.id]  # shorter than a trigram: a scan
    assert store.search("blue rayleigh") == []  # every trigram is there, not the text itself
    physics.update_content(q.id, "Why is the sea green?")
    store.save(physics)
    assert store.search("sky") == [] and store.search("SEA GREEN") == [physics.id]


def brute_force_search(chats: list[Chat], query: str) -> set[str]:
    folded = query.strip().casefold()
    return {c.id for c in chats if folded in c.title.casefold()
            or any(folded in m.content.casefold() for m in c.messages.values())}


@pytest.mark.parametrize("scan_above", [0.3, 0.0, float("inf")])  # as set, always scan, always the index
def test_short_queries_find_exactly_what_a_substring_test_finds(store, monkeypatch, scan_above):
    import random
    from chatgui.store import history
    monkeypatch.setattr(history, "_SCAN_ABOVE", scan_above)
    rng = random.Random(5)
    pieces = ["你好", "世界", "中文", "好的", "ab", "BA", "Straße", "é", "É", "x", "\"q\"", " ", "\n", "🙂", "ss", "学习"]
    chats = []
    for c in range(40):
        chat = Chat(title=rng.choice(["", "", f"title {c}", "标题"]))
        for _ in range(rng.randint(0, 4)):
            chat.append(rng.choice(["user", "assistant"]), "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))))
        chats.append(chat)
        store.save(chat)
    ends = Chat()
    ends.append("user", "ends with 学习")                 # only at the end: no trigram starts with it
    ends.append("assistant", "好")
    ends.append("user", "ab")                            # the whole text
    chats.append(ends)
    store.save(ends)
    queries = ["你好", "好世", "学习", "习", "好", "ab", "AB", "ba", "b", "ss", "SS", "ß", "é", "É", "\"q", "q\"", "🙂",
               "好🙂", "x你", "界中", "zz", "e\n", "\n", "习 ", "ß\"", "文好", "的"]
    queries += ["".join(rng.choice("".join(pieces)) for _ in range(2)) for _ in range(60)]
    for query in queries:
        got = store.search(query)
        assert set(got) == brute_force_search(chats, query), query
        assert got == [s.id for s in store.list_chats() if s.id in set(got)]   # newest first
    assert ends.id in store.search("学习") and ends.id in store.search("AB")


def test_an_older_database_gets_the_tail_index_on_opening(store):
    import sqlite3
    chat = Chat()
    chat.append("user", "text ending in 你好")
    store.save(chat)
    store.close()
    plain = sqlite3.connect(store.db_path)
    plain.execute("DROP INDEX messages_by_tail")
    plain.commit()
    plain.close()
    again = HistoryStore(store.folder)
    assert again.search("你好") == [chat.id]
    assert again._query("SELECT name FROM sqlite_master WHERE name='messages_by_tail'")


def test_export_markdown():
    chat = Chat(title="Greeting", system_prompt="Be brief.\nBe kind.")
    u = chat.append("user", "Hi")
    chat.append("assistant", "old answer")
    chat.add_message(u.id, "assistant", "Hello! **bold**", meta={"model": "Qwen-0.5B"})
    md = export_markdown(chat)
    assert md.startswith("# Greeting\n")
    assert "> Be brief.\n> Be kind." in md
    assert "## User\n\nHi\n" in md
    assert "## Assistant (Qwen-0.5B)\n\nHello! **bold**\n" in md
    assert "old answer" not in md  # only the conversation as shown
    assert HistoryStore.export_markdown is export_markdown


def test_export_json_is_complete_and_reloadable(store, tmp_path):
    chat = make_chat(2, title="Json")
    chat.add_message(chat.active_path()[-2].id, "assistant", "second candidate")
    text = export_json(chat)
    doc = json.loads(text)
    assert doc["schema"] == 1 and len(doc["messages"]) == 5
    assert Chat.from_dict(doc) == chat
    (tmp_path / "export.json").write_text(text, encoding="utf-8")
    assert store.import_file(tmp_path / "export.json") == [chat.id]  # an export can be put back
    assert store.load(chat.id) == chat


# ---- settings ----------------------------------------------------------------------------

def test_settings_defaults_when_missing(dirs):
    problems = []
    s = load_settings(problems=problems)
    assert s == AppSettings() and problems == []
    assert s.sampling_settings() == SamplingSettings()
    assert s.device == "auto" and s.language == "system" and s.system_prompt == ""


def test_settings_round_trip(dirs):
    _, config = dirs
    s = AppSettings(system_prompt="Be terse", model_path="/m/q.gguf", device="cuda", context_length=4096,
                    language="zh_CN", random_seed=False, show_token_view=True, window_geometry="AdnQ==",
                    window_state="AAA=", splitter_state="BBB=", last_chat_id="abc", backend={"port": 8080})
    s.set_sampling(SamplingSettings(temperature=0.1, seed=7, stop=("END",)))
    save_settings(s)
    assert (config / "settings.json").is_file() and os.listdir(config) == ["settings.json"]
    loaded = load_settings()
    assert loaded == s
    assert loaded.sampling_settings() == SamplingSettings(temperature=0.1, seed=7, stop=("END",))


def test_settings_unknown_keys_ignored_and_bad_types_replaced_field_by_field(dirs):
    _, config = dirs
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps({
        "future_option": 1, "system_prompt": 42, "model_path": "/ok.gguf", "device": "tpu",
        "context_length": "big", "language": "en", "random_seed": "yes", "show_token_view": True,
        "window_geometry": 5, "backend": [], "theme": "dark",
        "sampling": {"temperature": "hot", "top_k": 10, "top_p": 1, "seed": True, "stop": ["a", 3], "x": 1},
    }))
    problems = []
    s = load_settings(problems=problems)
    assert problems == []
    assert (s.system_prompt, s.model_path, s.device, s.context_length) == ("", "/ok.gguf", "auto", None)
    assert (s.language, s.random_seed, s.show_token_view, s.window_geometry) == ("en", True, True, None)
    assert (s.backend, s.theme) == ({}, "dark")
    assert s.sampling == {**SamplingSettings().to_dict(), "top_k": 10, "top_p": 1.0}
    assert s.sampling_settings().top_p == 1.0


def test_settings_sampling_not_a_dict_falls_back(dirs):
    s = AppSettings.from_dict({"sampling": "oops", "context_length": -5})
    assert s.sampling == SamplingSettings().to_dict() and s.context_length is None


def test_save_async_writes_the_chat_as_it_was_when_called(store):
    chat = make_chat(2)
    reply = chat.active_path()[-1]
    tokens = [TokenRecord(1, "a", 0.5), TokenRecord(2, "b", 0.5)]
    chat.update_content(reply.id, "as it was", ReplyMeta(token_data=tokens))
    writer = store._w()
    with writer.lock:  # the writer thread waits: the chat changes before it writes
        store.save_async(chat)
        chat.update_content(reply.id, "changed later", ReplyMeta(error="later"))
        tokens.append(TokenRecord(3, "c", 0.5))
        chat.append("user", "a later question")
    store.flush()
    saved = HistoryStore(store.folder).load(chat.id)
    assert saved.messages[reply.id].content == "as it was" and saved.messages[reply.id].reply_meta.error is None
    assert saved.messages[reply.id].reply_meta.token_data == [TokenRecord(1, "a", 0.5), TokenRecord(2, "b", 0.5)]
    assert len(saved.messages) == 4


def test_chats_with_the_old_unused_settings_still_load(store):
    """Chat.settings is gone (it was written, never read): an old JSON chat or database row with it
    loads, and the next save clears the column."""
    old = make_chat(1).to_dict()
    old["settings"] = {"temperature": 0.3}
    chat = Chat.from_dict(old)
    assert "settings" not in chat.to_dict()
    store.save(chat)
    with sqlite3.connect(store.folder / "history.sqlite3") as conn:
        conn.execute("UPDATE chats SET settings=? WHERE id=?", ('{"temperature": 0.3}', chat.id))
    again = HistoryStore(store.folder)
    loaded = again.load(chat.id)
    assert loaded == chat
    loaded.title = "renamed"
    again.save(loaded)
    again.close()
    with sqlite3.connect(store.folder / "history.sqlite3") as conn:
        assert conn.execute("SELECT settings FROM chats WHERE id=?", (chat.id,)).fetchone() == (None,)

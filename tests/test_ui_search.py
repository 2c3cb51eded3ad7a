"""Searching the chats as you type: the store is searched off the GUI thread, and an answer that
comes after a newer search started is dropped."""
from __future__ import annotations

import threading

from chatgui.store import Chat, HistoryStore


def saved_chat(store: HistoryStore, text: str) -> Chat:
    chat = Chat()
    chat.append("user", text)
    chat.append("assistant", "noted")
    store.save(chat)
    return chat


def test_search_runs_off_the_gui_thread_and_only_the_newest_answer_counts(qtbot, make_window, monkeypatch):
    store = HistoryStore()
    otters, badgers = saved_chat(store, "otters swim"), saved_chat(store, "badgers dig")
    store.close()
    window = make_window(wait_model=False)
    listed = lambda: set(window.chat_list.chat_ids()) - {window.current.id}   # noqa: E731 (less the new empty chat)
    qtbot.waitUntil(lambda: listed() == {otters.id, badgers.id}, timeout=5000)
    on_gui_thread, gate, search = [], threading.Event(), HistoryStore.search

    def slow_search(self, query):
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        if query == "otters":
            gate.wait(10)   # an old search that answers late
        return search(self, query)

    monkeypatch.setattr(HistoryStore, "search", slow_search)
    window.chat_list.search.setText("otters")
    qtbot.waitUntil(lambda: len(on_gui_thread) == 1, timeout=5000)
    assert listed() == {otters.id, badgers.id}   # the window did not wait for it
    window.chat_list.search.setText("badgers")
    qtbot.waitUntil(lambda: window.chat_list.chat_ids() == [badgers.id], timeout=5000)
    gate.set()
    assert window.jobs.wait(10)
    qtbot.wait(100)   # the late answer arrives as an event, and is dropped
    assert window.chat_list.chat_ids() == [badgers.id]
    assert on_gui_thread == [False, False]
    window.chat_list.search.clear()
    qtbot.waitUntil(lambda: listed() == {otters.id, badgers.id}, timeout=5000)

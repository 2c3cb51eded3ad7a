"""The chat list: searching as you type (the store is searched off the GUI thread, and an answer
that comes after a newer search started is dropped), and refilling it without rebuilding rows
that did not change."""
from __future__ import annotations

import threading

from chatgui.store import HistoryStore
from chatgui.session import Chat


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


def test_refilling_the_same_rows_keeps_them_and_updates_the_times(qtbot):
    import time as _time
    from chatgui.ui.chat.chat_list import ChatListPanel
    panel = ChatListPanel()
    qtbot.addWidget(panel)
    now = _time.time()
    entries = [(f"id{i}", f"chat {i}", now - i) for i in range(50)]
    panel.set_chats(entries, "id0")
    first = panel.list.item(1)
    panel.set_chats([("id0", "chat 0", now + 120), *entries[1:]], "id3")   # a message in the newest chat
    assert panel.list.item(1) is first and panel.current_id() == "id3"
    assert _time.strftime("%H:%M", _time.localtime(now + 120)) in first.toolTip()
    panel.set_chats([entries[5], *entries[:5], *entries[6:]], "id5")        # an older chat moves up
    assert panel.chat_ids()[:2] == ["id5", "id0"] and panel.current_id() == "id5"


def test_a_new_chat_while_searching_selects_nothing_listed(qtbot):
    import time as _time
    from chatgui.ui.chat.chat_list import ChatListPanel
    panel = ChatListPanel()
    qtbot.addWidget(panel)
    entries = [("a", "storm at sea", _time.time())]
    panel.set_chats(entries, "a")
    panel.set_chats(entries, "new-empty-chat")   # the search still lists only "a"
    assert panel.current_id() is None


def test_a_title_cleared_in_place_is_shown_again(qtbot):
    import time as _time
    from chatgui.ui.chat.chat_list import ChatListPanel
    panel = ChatListPanel()
    qtbot.addWidget(panel)
    entries = [("a", "Lighthouse keepers", _time.time())]
    panel.set_chats(entries, "a")
    panel.list.item(1).setText("")   # what the editor does when the title is cleared
    panel.set_chats(entries, "a")    # the window lists the title from the first message again
    assert panel.titles() == ["Lighthouse keepers"]


def test_a_search_with_nul_or_quotes_never_shows_the_damaged_notice(qtbot, make_window, monkeypatch):
    """A NUL or an unbalanced quote in the search box is a query, not damage (issue 29): the list
    shows what matches, and no notice offers to restore a backup."""
    from chatgui.ui.chat.history_actions import UNUSABLE_NOTICE
    store = HistoryStore()
    nul, quoted = saved_chat(store, "pasted a\x00b from a binary"), saved_chat(store, 'she said "hi')
    store.close()
    window = make_window(wait_model=False)
    for query, found in (("a\x00b", [nul.id]), ('said "hi', [quoted.id]), ('"', [quoted.id]), ("\x00\x00\x00", [])):
        window.chat_list.search.setText(query)
        qtbot.waitUntil(lambda: window._search[1] == query, timeout=5000)
        assert window.chat_list.chat_ids() == found
        assert window.notices.get(UNUSABLE_NOTICE) is None and window.notices.get("list-error") is None
    # A query SQLite could not parse (none reaches it now; forced here) is said to be one.
    monkeypatch.setattr("chatgui.store.history._quoted", lambda term: term + '"')
    window.chat_list.search.setText("binary")
    qtbot.waitUntil(lambda: window.notices.get("list-error") is not None, timeout=5000)
    assert "could not understand" in window.notices.get("list-error").text()
    assert window.notices.get(UNUSABLE_NOTICE) is None

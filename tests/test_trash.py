"""A deleted chat goes to a trash for 30 days (issue 15): Undo in the notice, File > Trash… to
restore or empty it; the chat comes back whole."""
import time

from chatgui.store import HistoryStore
from chatgui.session import Chat


def test_the_store_keeps_trashed_chats_out_of_the_list_and_search_until_restored(tmp_path):
    store = HistoryStore(tmp_path)
    chat = Chat()
    chat.append("user", "a question about otters")
    store.save(chat)
    store.trash(chat.id)
    assert chat.id not in [c.id for c in store.list_chats()] and store.search("otters") == []
    assert [s.id for s, _ in store.list_trash()] == [chat.id]
    store.restore(chat.id)
    assert store.search("otters") == [chat.id] and store.list_trash() == []
    assert store.load(chat.id).active_path()[0].content == "a question about otters"


def test_only_chats_deleted_more_than_30_days_ago_are_purged(tmp_path):
    store = HistoryStore(tmp_path)
    old, new = Chat(), Chat()
    for c in (old, new):
        c.append("user", "hello")
        store.save(c)
        store.trash(c.id)
    store._w().set_trashed(old.id, time.time() - 31 * 86400)   # deleted a month ago
    assert store.empty_trash(older_than_days=30) == [old.id]
    assert not store.exists(old.id) and [s.id for s, _ in store.list_trash()] == [new.id]
    assert store.empty_trash() == [new.id] and not store.exists(new.id)


def test_delete_then_undo_and_restore_from_the_trash_view(qtbot, make_window):
    from test_ui import send_and_wait
    window = make_window()
    reply = send_and_wait(qtbot, window, "Keep me safe")
    chat_id = window.current.id
    assert window.delete_chat(chat_id)
    assert chat_id not in window.chat_list.chat_ids()
    window.notices.get("deleted").buttons["Undo"].click()              # Undo in the notice
    assert chat_id in window.chat_list.chat_ids() and window.current.id == chat_id
    assert window.delete_chat(chat_id)
    trash = window.open_trash()                                         # File > Trash…
    assert trash.count() == 1
    trash.rows[0].restore_button.click()
    assert trash.count() == 0 and chat_id in window.chat_list.chat_ids()
    restored = HistoryStore().load(chat_id)
    assert [m.content for m in restored.active_path()] == ["Keep me safe", reply.content]
    assert restored.messages[reply.id].reply_meta.token_data               # whole, token records too
    assert window.delete_chat(chat_id)
    trash.refresh()
    trash.confirm = lambda title, text, primary: True
    trash.empty()
    assert trash.count() == 0 and not HistoryStore().exists(chat_id)
    trash.close()

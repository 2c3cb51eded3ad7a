"""The window and the chat database as a whole: import, export off the GUI thread, a database that
cannot be used (restored from its backup), one running instance per data folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from chatgui.store import AlreadyRunning, HistoryStore, InstanceLock
from chatgui.session import Chat
from chatgui.common import paths

ROOT = Path(__file__).resolve().parents[1]


def _saved_chat(store: HistoryStore, text: str) -> Chat:
    chat = Chat(title=text)
    chat.add_message(None, "user", text)
    store.save(chat)
    return chat


def test_a_corrupt_database_says_so_and_restores_its_backup(qtbot, make_window):
    folder = paths.data_dir()
    store = HistoryStore(folder)
    kept = _saved_chat(store, "kept by the backup")
    store.backup_now()
    store.close()
    db = folder / "history.sqlite3"
    db.write_bytes(b"this is not a database at all " * 200)   # overwritten by something else
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)

    window = make_window(wait_model=False)
    notice = window.notices.get("database-unusable")
    assert notice is not None and "not SQLite" in notice.text() and "Nothing was changed" in notice.text()
    assert kept.id not in window.chat_list.chat_ids()
    [button] = [b for caption, b in notice.buttons.items() if caption.startswith("Restore the backup of ")]
    button.click()
    window.refresh_chat_list()   # while the restore runs: no second offer
    assert not window.notices.get("database-unusable").isEnabled()
    qtbot.wait(3000); n = window.notices.get("list-error"); print("DBG", n.text() if n else None, [c.id for c in window.store.list_chats()], kept.id, window.chat_list.chat_ids())
    qtbot.waitUntil(lambda: kept.id in window.chat_list.chat_ids(), timeout=20_000)
    assert window.notices.get("database-unusable") is None
    assert window.library.store is window.store and window.store.exists(kept.id)
    aside = [p for p in folder.iterdir() if p.name.startswith("history.sqlite3") and p != db and "corrupt" in p.name]
    assert aside and aside[0].read_bytes().startswith(b"this is not a database")   # moved, not overwritten


def test_a_locked_database_offers_no_restore(qtbot, make_window):
    from chatgui.store import DatabaseUnusable
    window = make_window(wait_model=False)
    window.history_actions.show_unusable(DatabaseUnusable("locked", "locked", paths.data_dir() / "history.sqlite3",
                                                          [paths.data_dir() / "backups/history-20261129-101500.sqlite3"]))
    notice = window.notices.get("database-unusable")
    assert "locked by another program" in notice.text() and not notice.buttons


def test_import_runs_off_the_gui_thread_and_reports_the_count(qtbot, make_window, tmp_path, monkeypatch):
    export = tmp_path / "conversations.json"
    node = lambda i, parent, role, text, kids: {"id": i, "parent": parent, "children": kids, "message": (  # noqa: E731
        None if role is None else {"id": i, "author": {"role": role}, "create_time": 1700000000.0,
                                   "content": {"content_type": "text", "parts": [text]}})}
    export.write_text(json.dumps([{"title": f"From ChatGPT {n}", "create_time": 1700000000.0,
                                   "update_time": 1700000100.0, "current_node": "b",
                                   "mapping": {"root": node("root", None, None, "", ["a"]),
                                               "a": node("a", "root", "user", f"question {n}", ["b"]),
                                               "b": node("b", "a", "assistant", f"answer {n}", [])}}
                                  for n in range(3)]), encoding="utf-8")
    window = make_window(wait_model=False)
    before = set(window.chat_list.chat_ids())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(export), ""))
    [action] = [a for a in window.menuBar().findChild(QMenu, "fileMenu").actions() if a.text() == "&Import chats…"]
    action.trigger()
    qtbot.waitUntil(lambda: window.notices.get("import-result") is not None, timeout=20_000)
    assert "Imported 3 chat" in window.notices.get("import-result").text()
    new = set(window.chat_list.chat_ids()) - before
    assert len(new) == 3
    assert "answer 1" in "".join(m.content for i in new for m in window.store.load(i).messages.values())

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    window.history_actions.import_chats(str(bad))
    qtbot.waitUntil(lambda: "Could not import bad.json" in window.notices.get("import-result").text(), timeout=20_000)
    assert set(window.chat_list.chat_ids()) - before == new   # nothing else came in


def test_export_failure_is_a_notice(qtbot, make_window, tmp_path):
    window = make_window(wait_model=False)
    chat = Chat()
    chat.add_message(None, "user", "export me")
    window.library.add(chat)
    window.current = chat
    assert window.export_chat(str(tmp_path / "no" / "such" / "folder" / "x.md"), "markdown")
    qtbot.waitUntil(lambda: window.notices.get("export-error") is not None, timeout=20_000)
    assert window.export_chat(str(tmp_path / "x.md"), "markdown")
    qtbot.waitUntil(lambda: window.notices.get("export-error") is None, timeout=20_000)
    assert "export me" in (tmp_path / "x.md").read_text(encoding="utf-8")


def test_second_start_without_an_answer_says_who_holds_the_folder(qtbot, monkeypatch):
    from chatgui.ui.common import single_instance
    folder = paths.data_dir()
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    with InstanceLock(folder):   # held, but nobody listens
        first = single_instance.SingleInstance(folder)
        try:
            first.acquire()
            raise AssertionError("a second lock on the same folder was granted")
        except AlreadyRunning as err:
            assert single_instance.second_start(err, folder) == 1
    assert shown and str(folder) in shown[0] and f"process {os.getpid()}" in shown[0]


def test_a_second_start_brings_the_first_window_forward(tmp_path, tiny_model_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CHATGUI_DATA_DIR": str(tmp_path / "data"),
           "CHATGUI_CONFIG_DIR": str(tmp_path / "config"), "PYTHONPATH": str(ROOT), "CHATGUI_NO_FETCH": "1",
           "CHATGUI_MODEL": str(tiny_model_path)}
    first_code = textwrap.dedent("""
        from PySide6.QtCore import QTimer
        import chatgui.ui.app as app_module
        import chatgui.ui.common.single_instance as si
        real = si.bring_forward
        def spy(window):
            real(window)
            print("brought forward", flush=True)
            QTimer.singleShot(200, window.close)
        si.bring_forward = spy
        QTimer.singleShot(0, lambda: print("ready", flush=True))
        raise SystemExit(app_module.main(["--no-fetch"]))
    """)
    first = subprocess.Popen([sys.executable, "-c", first_code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT)
    try:
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run([sys.executable, "-m", "chatgui", "--no-fetch"], capture_output=True, text=True,
                                env=env, cwd=ROOT, timeout=60)
        assert second.returncode == 0, second.stderr
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert "brought forward" in out and first.returncode == 0, err

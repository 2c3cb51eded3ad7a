"""Issue 30, what the second pass left: styled confirmations, a Trash view with dates and buttons,
a settings panel that narrows to ~300 px, the welcome card's model description in Chinese, and
error notices that never wait behind information."""
from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication, QMessageBox

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.store import HistoryStore
from chatgui.session import Chat
from chatgui.ui.common.confirm import ConfirmDialog, ask
from conftest import shown_notices


# -- styled confirmations ----------------------------------------------------------------------------
def test_the_confirmation_is_the_styled_dialog_with_a_red_destructive_button(qtbot, monkeypatch):
    seen = []

    def answer(dialog, choice):
        seen.append(dialog)
        return dialog.choose(choice)

    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: answer(d, "primary"))
    assert ask(None, "Delete model", "Delete x.gguf?", "Delete", destructive=True) == "primary"
    dialog = seen[-1]
    assert dialog.text() == "Delete x.gguf?" and dialog.windowTitle() == "Delete model"
    assert dialog.buttons["primary"].text() == "Delete" and dialog.buttons["primary"].property("destructive")
    assert dialog.buttons["secondary"].isDefault()          # Enter never deletes by accident
    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: answer(d, None))
    assert ask(None, "Add", "Copy it?", "Copy", other="Use in place") is None
    assert seen[-1].buttons["primary"].isDefault() and not seen[-1].buttons["primary"].property("destructive")
    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: answer(d, "other"))
    assert ask(None, "Add", "Copy it?", "Copy", other="Use in place") == "other"


def test_no_stock_question_box_is_left_in_the_window(qtbot, make_window, monkeypatch, tmp_path):
    """Deleting a model asks in the styled dialog; a stock QMessageBox would fail this test."""
    monkeypatch.setattr(QMessageBox, "exec", lambda box: (_ for _ in ()).throw(AssertionError(box.text())))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: (_ for _ in ()).throw(AssertionError(a)))
    asked = []
    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: asked.append(d.text()) or d.choose(None))
    window = make_window(wait_model=False)
    page = window.open_models().page
    gguf = tmp_path / "spare.gguf"
    gguf.write_bytes(b"GGUF")
    page._delete(gguf, "spare")
    assert asked and "spare" in asked[0] and gguf.exists()   # answered no: nothing deleted


# -- the Trash view ----------------------------------------------------------------------------------
def test_trash_rows_show_dates_and_restore_or_delete_forever(qtbot, make_window, monkeypatch):
    window = make_window(wait_model=False)
    store = window.store
    kept, doomed, old = Chat(), Chat(), Chat()
    for chat, title in ((kept, "Otters"), (doomed, "Badgers"), (old, "Voles")):
        chat.title = title
        chat.append("user", f"about {title}")
        store.save(chat)
        store.trash(chat.id)
    store._w().set_trashed(old.id, time.time() - 29.5 * 86400)    # half a day left
    trash = window.open_trash()
    qtbot.addWidget(trash)
    by_title = {row.title.text(): row for row in trash.rows}
    assert set(by_title) == {"Otters", "Badgers", "Voles"}
    assert "in 30 days" in by_title["Otters"].dates.text() and "Deleted" in by_title["Otters"].dates.text()
    assert "tomorrow" in by_title["Voles"].dates.text()

    by_title["Otters"].restore_button.click()
    assert kept.id in window.chat_list.chat_ids() and trash.count() == 2

    answers = iter([None, "primary"])                               # first "Cancel", then "Delete forever"
    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: d.choose(next(answers)))
    row = next(r for r in trash.rows if r.title.text() == "Badgers")
    row.delete_button.click()
    assert store.exists(doomed.id) and trash.count() == 2
    next(r for r in trash.rows if r.title.text() == "Badgers").delete_button.click()
    assert not store.exists(doomed.id) and trash.count() == 1

    monkeypatch.setattr(ConfirmDialog, "exec", lambda d: d.choose("primary"))
    trash.empty_button.click()
    assert trash.count() == 0 and not store.exists(old.id) and not trash.empty_button.isEnabled()
    assert trash.empty_label.isVisibleTo(trash)
    assert HistoryStore(store.db_path.parent).exists(kept.id)


# -- notices: errors first ---------------------------------------------------------------------------
def test_an_error_notice_never_waits_behind_information(qtbot):
    from chatgui.ui.common.notices import NoticeArea
    area = NoticeArea()
    qtbot.addWidget(area)
    area.show()
    area.show_notice("i1", "one", "info")
    area.show_notice("i2", "two", "info")
    area.show_notice("err", "it broke", "error")
    shown = shown_notices(area)
    assert len(shown) == 2 and "err" in shown
    QApplication.processEvents()
    assert area.get("err").y() < area.get("i2").y()                # the error on top
    area.show_notice("i3", "three", "info")
    assert shown_notices(area) == ["err", "i3"]                                  # newest information next to the error


# -- the settings panel narrows: its rows wrap -------------------------------------------------------
def test_the_settings_panel_opened_at_900_px_leaves_the_chat_480_px(qtbot, make_window):
    """The panel was as wide as "Serve this model on 127.0.0.1, port [8000]" (~380 px): the chat
    got ~357 px. Its rows now wrap (labels above fields, the picker's buttons under it)."""
    from test_ui_chrome import outside_the_window
    from chatgui.ui.common.fold import FoldSection
    window = make_window(wait_model=False)
    window.resize(900, 600)
    qtbot.wait(200)
    if not window.panel.isVisible():
        window.settings_button.click()
    qtbot.waitUntil(lambda: window.panel.isVisible(), timeout=5000)
    for fold in window.panel.findChildren(FoldSection):     # every row shown: the widest case
        fold.set_open(True)
    qtbot.wait(600)                                            # the side column is fitted
    assert window.panel.width() <= 300
    qtbot.waitUntil(lambda: window.view.width() >= 480, timeout=5000)
    assert outside_the_window(window) == []                   # and nothing in the panel is cut off
    label = window.backend.serve_group.check_label
    assert label.wordWrap() and label.buddy() is window.backend.serve_group.check

"""Issue 30, the defects a new user still hit (each test failed before its fix): code blocks after a
theme switch, the inspector while a reply streams, Generate 3 answers, the Models page, plain errors,
notices, search, file dialogs, language changes, Compare, and the migration of many old chats."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.ui.common.safe_text import is_code_block
from conftest import shown_notices


def luminance(colour: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def code_contrasts(browser) -> list[float]:
    """The contrast of every run of text in the browser's code blocks against the block's
    background, as they are drawn: the run's own colour, else the browser's text colour."""
    text_colour = browser.palette().color(QPalette.ColorRole.Text)
    out = []
    block = browser.document().begin()
    while block.isValid():
        if is_code_block(block) and block.text().strip():
            background = block.blockFormat().background()
            assert background.style() != Qt.BrushStyle.NoBrush, "a code block without its own background"
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.text().strip():
                    brush = fragment.charFormat().foreground()
                    colour = brush.color() if brush.style() != Qt.BrushStyle.NoBrush else text_colour
                    out.append(contrast(colour, background.color()))
                it += 1
        block = block.next()
    return out


@pytest.fixture
def theme():
    from chatgui.ui.common.theme import apply_theme
    yield apply_theme
    apply_theme("system")


# -- 1. a theme switch leaves code blocks readable -------------------------------------------------
def test_code_blocks_stay_readable_when_the_theme_changes(qtbot, theme):
    from chatgui.ui.chat.markdown_body import MarkdownBody

    theme("light")
    body = MarkdownBody("Plain:\n\n```\nx = 1\nprint(x)\n```\n\nColoured:\n\n```python\ndef f(a):\n    return a\n```")
    qtbot.addWidget(body)
    body.resize(500, 300)
    body.show()
    browser = body.browsers()[0]
    assert code_contrasts(browser) and min(code_contrasts(browser)) >= 4.5
    for name in ("dark", "light", "dark"):
        theme(name)
        QApplication.processEvents()
        browser = body.browsers()[0]
        values = code_contrasts(browser)
        assert values and min(values) >= 4.5, f"after switching to {name}: contrast {min(values):.2f}"


def ask(qtbot, window, text, max_new_tokens=4):
    window.panel.max_new_tokens.setValue(max_new_tokens)
    window.input_bar.input.setPlainText(text)
    assert window.send_message()
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=60_000)


# -- 4. no stale bars under a new heading while a reply streams ------------------------------------
def test_inspector_shows_no_stale_bars_while_a_reply_streams(qtbot, make_window):
    window = make_window()
    inspector, dock = window.explain.inspector, window.explain.dock
    ask(qtbot, window, "First question")
    dock.toggleViewAction().trigger()
    qtbot.waitUntil(lambda: inspector.data is not None and bool(dock.chart.rows), timeout=10_000)
    first_heading = dock.position_label.text()
    window.panel.max_new_tokens.setValue(400)
    window.input_bar.input.setPlainText("Second question")
    assert window.send_message() and window.replies.busy
    inspector.request_now()                    # what its timer does while the reply streams
    assert dock.position_label.text() != first_heading and "Second question" in dock.position_label.text()
    assert not dock.chart.rows and not dock.summary_label.text()   # the bars were for the first question
    assert "Waiting" in dock.message_label.text()
    window.stop_reply()
    qtbot.waitUntil(lambda: bool(dock.chart.rows), timeout=10_000)


# -- 5. Generate 3 answers: progress for all, Stop off at the end, no "0.0 tok/s", cut answers marked ----
def test_three_answers_show_progress_end_cleanly_and_mark_the_cut_ones(qtbot, make_window):
    window = make_window()
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(11)             # (a seed whose answers run on to the limit)
    ask(qtbot, window, "Tell me a long story", max_new_tokens=4)
    window.panel.max_new_tokens.setValue(60)
    seen = []

    def progress_seen():
        if window.replies.busy and window.status.progress.isVisible():
            seen.append(window.status.currentMessage())
        return not window.replies.busy
    ids = window.generate_answers(3)
    assert len(ids) == 3 and window.stop_action.isEnabled()
    qtbot.waitUntil(progress_seen, timeout=60_000)
    # the answers not on screen had their progress shown: how many are written, and their tokens
    assert any("3 answers" in text for text in seen), seen
    assert not window.stop_action.isEnabled()
    assert window.input_bar.send_button.isVisible() and not window.input_bar.stop_button.isVisible()
    assert not window.status.progress.isVisible()
    assert "0.0 tok/s" not in window.status.speed_label.text()
    answers = [window.current.messages[i] for i in ids]
    cut = [a for a in answers if a.meta.finish_reason == "length"]
    assert cut, [a.meta.finish_reason for a in answers]
    for answer in answers:
        window.current.select(answer.id)
        window.show_current(scroll_to_end=False)
        info = window.view.widget_for(answer.id).info_label.text()
        assert ("token limit" in info) == (answer.meta.finish_reason == "length"), info


# -- 12. upgrading with many chats: the window first, then the chats as they are moved ------------------
def write_legacy_chats(folder, n: int) -> list[str]:
    """n small chat files of the one-file-per-chat layout (what chatgui wrote before the database)."""
    from chatgui.common.records import TokenRecord
    from chatgui.session import Chat
    from chatgui.store.export import export_json

    folder.mkdir(parents=True)
    ids = []
    for i in range(n):
        chat = Chat(title=f"old chat {i}")
        chat.append("user", f"question {i}")
        chat.append("assistant", f"answer {i}", meta={"token_data": [TokenRecord(0, "x", 0.5)]})
        (folder / f"{chat.id}.json").write_text(export_json(chat), encoding="utf-8")
        ids.append(chat.id)
    return ids


def test_upgrading_with_2000_old_chats_shows_the_window_first(qtbot, make_window, tmp_path):
    import time

    from chatgui.store import HistoryStore

    ids = write_legacy_chats(tmp_path / "data" / "chats", 2000)
    (tmp_path / "data" / "chats" / "broken.json").write_text("{ not json", encoding="utf-8")
    started = time.perf_counter()
    window = make_window(wait_model=False)
    shown = time.perf_counter() - started
    assert window.isVisible() and shown <= 2.0, f"the window took {shown:.2f} s"
    # The migration goes on in the window: it says how far it is, and the list fills as chats land.
    progress = []
    window.migration.progressed.connect(lambda done, total: progress.append((done, total)))
    assert window.migration.running and window.notices.get("migration") is not None
    qtbot.waitUntil(lambda: not window.migration.running, timeout=60_000)
    assert progress and progress[-1] == (2001, 2001) and len(progress) > 10   # batches of 100
    assert window.notices.get("migration") is None
    assert "broken.json" in window.notices.get("store-problems").text()
    assert set(ids) <= set(window.chat_list.chat_ids())
    window.close()
    again = HistoryStore()
    assert {s.id for s in again.list_chats()} == set(ids) and not again.legacy_pending()


# -- 9. notices go by themselves and never pile up; imports say "1 chat" and mark a title twice seen ------
def test_notices_stack_at_most_two_and_information_goes_by_itself(qtbot, monkeypatch):
    from chatgui.ui.common import notices as notices_module
    from chatgui.ui.common.notices import NoticeArea

    monkeypatch.setattr(notices_module, "INFO_TIMEOUT_MS", 200)
    area = NoticeArea()
    qtbot.addWidget(area)
    area.show()
    area.show_notice("a", "an error", "error")
    area.show_notice("b", "a warning", "warning")
    area.show_notice("c", "for your information", "info")
    assert shown_notices(area) == ["a", "b"]              # the most severe two; information waits
    qtbot.waitUntil(lambda: area.get("c") is None, timeout=3000)   # information goes by itself
    assert shown_notices(area) == ["a", "b"]              # errors and warnings stay until dismissed
    qtbot.wait(400)
    assert area.get("a") is not None and area.get("b") is not None


def test_import_says_one_chat_and_marks_a_title_already_there(qtbot, make_window, tmp_path):
    from chatgui.store import HistoryStore
    from chatgui.session import Chat
    from chatgui.store.export import export_json

    chat = Chat(title="Holiday plans")
    chat.append("user", "Where to go?")
    chat.append("assistant", "The sea.")
    HistoryStore().save(chat)
    export = tmp_path / "holiday.json"
    export.write_text(export_json(chat), encoding="utf-8")
    window = make_window(wait_model=False)
    window.history_actions.import_chats(str(export))
    qtbot.waitUntil(lambda: window.notices.get("import-result") is not None, timeout=20_000)
    assert window.notices.get("import-result").text() == "Imported 1 chat from holiday.json."
    titles = [window.store.load(i).title for i in window.chat_list.chat_ids() if i != window.current.id]
    assert sorted(titles) == ["Holiday plans", "Holiday plans (imported)"]


# -- 10. search opens the chat at the match, highlighted ------------------------------------------------
def test_search_opens_the_chat_at_the_match_highlighted(qtbot, make_window):
    from chatgui.store import HistoryStore
    from chatgui.session import Chat

    chat = Chat(title="A long talk")
    for i in range(40):
        chat.append("user", f"question number {i}")
        chat.append("assistant", "a fairly long answer " * 20 + ("the word zebrafish is here" if i == 3 else ""))
    HistoryStore().save(chat)
    target = [m for m in chat.messages.values() if "zebrafish" in m.content][0]
    window = make_window(wait_model=False)
    window.chat_list.search.setText("Zebrafish")
    qtbot.waitUntil(lambda: window.chat_list.chat_ids() == [chat.id], timeout=10_000)
    window.chat_list.select(chat.id)                      # as a click on the row does
    assert window.current.id == chat.id

    def at_the_match():
        """The marked word is on screen (not only its message's widget)."""
        widget = window.view.widget_for(target.id)
        if widget is None:
            return False
        for browser in widget.body.browsers():
            for selection in browser.extraSelections():
                rect = browser.cursorRect(selection.cursor)
                y = browser.viewport().mapTo(window.view.viewport(), rect.topLeft()).y()
                return 0 <= y and y + rect.height() <= window.view.viewport().height()
        return False
    qtbot.waitUntil(at_the_match, timeout=5000)
    qtbot.wait(500)                                       # (and it stays there)
    assert at_the_match()
    widget = window.view.widget_for(target.id)
    marked = [s.cursor.selectedText() for b in widget.body.browsers() for s in b.extraSelections()]
    assert marked == ["zebrafish"]
    window.chat_list.search.setText("")                   # the search is over: no more marks
    qtbot.waitUntil(lambda: not [s for b in widget.body.browsers() for s in b.extraSelections()], timeout=5000)


# -- 11. Compare writes A and B at once, as Markdown ---------------------------------------------------------
def test_compare_writes_both_presets_at_once_as_markdown(qtbot, make_window, monkeypatch):
    from chatgui.ui.common.safe_text import SafeTextBrowser, render_markdown
    from chatgui.ui.explain.compare import CompareDialog

    arrivals = []
    real = CompareDialog._on_tokens

    def recorded(self, request_id, text, records):
        side = self._side(request_id)
        arrivals.append(side.name if side is not None else "?")
        real(self, request_id, text, records)
    monkeypatch.setattr(CompareDialog, "_on_tokens", recorded)
    window = make_window()
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(11)
    window.panel.max_new_tokens.setValue(40)
    window.input_bar.input.setPlainText("Compare these")
    dialog = window.explain.open_compare(("Precise", "Creative"))
    assert all(side.request_id is not None for side in dialog.sides)          # both asked for at once
    assert [s.status.text() for s in dialog.sides] == ["writing…", "writing…"]
    qtbot.waitUntil(lambda: dialog.running is None, timeout=60_000)
    assert all(s.result for s in dialog.sides)
    # interleaved: B's words came while A was still being written
    assert "B" in arrivals and "A" in arrivals[arrivals.index("B"):], arrivals
    a, b = (side.result for side in dialog.sides)
    for side, result in zip(dialog.sides, (a, b)):
        assert isinstance(side.text, SafeTextBrowser) and side.text.document().markdown == result.text
        assert side.text.toPlainText() == render_markdown(result.text).toPlainText()
    assert a.meta.sampling["temperature"] != b.meta.sampling["temperature"]
    assert a.meta.seed == b.meta.seed == 11


# -- 11. file dialogs open in a remembered folder; Add .gguf checks the file first; a wide URL box ---------
def test_file_dialogs_open_in_the_documents_folder_then_the_one_used_last(qtbot, make_window, tmp_path, monkeypatch):
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    import chatgui.ui.common.file_dialogs as file_dialogs

    documents, elsewhere = tmp_path / "Documents", tmp_path / "exports"
    documents.mkdir()
    elsewhere.mkdir()
    monkeypatch.setattr(file_dialogs, "documents_folder", lambda: str(documents))
    window = make_window()
    ask(qtbot, window, "Export me")
    asked = []
    answer = [str(elsewhere / "talk.md")]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: asked.append(args[2]) or (answer[0], ""))
    window.export_dialog("markdown")
    assert Path(asked[-1]).parent == documents                     # the first time: the documents folder
    window.export_dialog("markdown")
    assert Path(asked[-1]).parent == elsewhere                     # then where the last export went
    page = window.open_models().page
    opened = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: opened.append(args[2]) or ("", ""))
    page.ask_gguf_file()
    assert opened == [str(documents)]
    window.close()
    window = make_window(wait_model=False)                         # remembered at the next start too
    assert window.settings.folders["export"] == str(elsewhere)


def test_add_gguf_checks_the_file_before_asking_how_to_add_it(qtbot, make_window, tmp_path):
    window = make_window(wait_model=False)
    page = window.open_models().page
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("just some notes")
    page.ask_gguf_file = lambda: str(not_a_model)
    asked = []
    page.ask_copy = lambda path: asked.append(path)
    page.add_button.click()
    assert asked == []                                             # no question about a file that is no model
    assert "notes.gguf" in page.message.text() and "not a GGUF model file" in page.message.text()


def test_the_download_address_box_is_wide(qtbot, make_window):
    from PySide6.QtWidgets import QLineEdit

    window = make_window(wait_model=False)
    dialog = window.open_models().page.url_dialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.findChild(QLineEdit).width() >= 480


def test_searching_marks_the_match_in_the_open_chat(qtbot, make_window):
    window = make_window(wait_model=False)
    window.current.append("user", "Where do axolotls live?")
    window.current.append("assistant", "In lakes near Mexico City.")
    window.save_chat(window.current)
    window.show_current()
    window.chat_list.search.setText("axolotl")
    question = window.current.active_path()[0].id

    def marked():
        return [s.cursor.selectedText() for s in window.view.widget_for(question).body.extraSelections()]
    qtbot.waitUntil(lambda: marked() == ["axolotl"], timeout=5000)


def test_stop_ends_the_other_answers_once_the_shown_one_is_done(qtbot, make_window):
    window = make_window()
    ask(qtbot, window, "Tell me a long story", max_new_tokens=4)
    window.panel.max_new_tokens.setValue(2000)
    ids = window.generate_answers(3)
    replies = window.replies
    qtbot.waitUntil(lambda: all(o.text for o in replies._others.values()), timeout=60_000)
    shown = replies.active
    replies._on_finished(shown.request_id, {"finish_reason": "stop", "tokens": len(shown.tokens)})   # as it would
    assert replies.active is None and replies._others and window.stop_action.isEnabled()
    window.stop_reply()                                      # Stop is lit: it must stop the other two
    assert not replies.busy and not window.stop_action.isEnabled()
    assert window.input_bar.send_button.isVisible() and not window.input_bar.stop_button.isVisible()
    answers = [window.current.messages[i] for i in ids[1:] if i in window.current.messages]
    assert answers and all(a.meta.finish_reason == "cancelled" for a in answers)

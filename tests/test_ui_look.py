"""The redesigned window (issue 15): themes, composer, message actions, jump to latest, chat
list groups, code blocks, thinking sections, the slimmed settings panel."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.store import HistoryStore, load_settings
from chatgui.session import Chat
from test_ui import send_and_wait, widget


# look -------------------------------------------------------------------------------------
def test_light_and_dark_themes_have_readable_contrast(make_window):
    from PySide6.QtGui import QPalette
    window = make_window(wait_model=False)

    def luminance(colour):
        return 0.2126 * colour.redF() + 0.7152 * colour.greenF() + 0.0722 * colour.blueF()

    for theme, dark in (("light", False), ("dark", True)):
        window.theme_menu.choose(theme)
        palette = QApplication.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        assert (luminance(base) < 0.3) == dark
        assert abs(luminance(base) - luminance(text)) > 0.6
        assert window.settings.theme == theme
    assert load_settings().theme == "light" or window.autosave.pending


def test_the_composer_grows_with_its_text_up_to_a_limit(make_window):
    window = make_window(wait_model=False)
    box = window.input_bar.input
    empty = box.height()
    box.setPlainText("\n".join(["line"] * 5))
    five = box.height()
    box.setPlainText("\n".join(["line"] * 40))
    forty = box.height()
    assert empty < five < forty and forty < 2.5 * five   # capped: then it scrolls
    assert window.input_bar.send_button.parent() is not None
    assert window.input_bar.composer.isAncestorOf(window.input_bar.send_button)   # the button sits inside


# conversation first -------------------------------------------------------------------------
def test_message_actions_are_icons_shown_on_hover_and_focus(qtbot, make_window):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QEnterEvent
    window = make_window()
    reply = send_and_wait(qtbot, window, "Hi", max_new_tokens=4)
    shown = widget(window, reply.id)
    buttons = [shown.copy_button, shown.regenerate_button, shown.replay_button]
    for button in buttons:
        assert not button.icon().isNull() and button.toolTip() and button.accessibleName()
        assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
    assert not shown.actions_shown()
    height = shown.height()
    QApplication.sendEvent(shown, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    assert shown.actions_shown() and shown.height() == height   # nothing jumps
    QApplication.sendEvent(shown, QEvent(QEvent.Type.Leave))
    assert not shown.actions_shown()
    window.activateWindow()
    shown.regenerate_button.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(shown.actions_shown, timeout=1000)   # reachable by keyboard


def test_jump_to_latest_appears_when_scrolled_up(qtbot, make_window):
    window = make_window(wait_model=False)
    chat = Chat(title="long")
    for i in range(12):
        chat.append("user", f"question {i}")
        chat.append("assistant", "\n\n".join(f"paragraph {j}" for j in range(6)))
    HistoryStore().save(chat)
    window.refresh_chat_list()
    window.open_chat(chat.id)
    view = window.view
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=2000)
    assert not view.jump_button.isVisible()
    bar.setValue(0)
    assert view.jump_button.isVisible()
    qtbot.mouseClick(view.jump_button, Qt.MouseButton.LeftButton)
    assert bar.value() == bar.maximum() and not view.jump_button.isVisible()


def test_the_chat_list_is_grouped_by_day(qtbot):
    import datetime
    import time as clock
    from chatgui.ui.chat.chat_list import ChatListPanel
    today = datetime.datetime.combine(datetime.date.today(), datetime.time(12, 0)).timestamp()
    entries = [("a", "today", min(today, clock.time())), ("b", "yesterday", today - 86400),
               ("c", "three days ago", today - 3 * 86400), ("d", "last month", today - 30 * 86400),
               ("e", "last year", today - 400 * 86400)]
    panel = ChatListPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_chats(entries, "c")
    assert panel.group_headers() == ["Today", "Yesterday", "Previous 7 days", "Older"]
    assert panel.chat_ids() == ["a", "b", "c", "d", "e"] and panel.current_id() == "c"
    panel.list.setFocus()
    panel.select("a")
    from PySide6.QtTest import QTest
    QTest.keyClick(panel.list, Qt.Key.Key_Down)   # over the "Yesterday" header, onto the next chat
    assert panel.current_id() == "b"


def test_code_blocks_are_coloured_and_have_a_copy_button(qtbot, make_window):
    from chatgui.ui.chat.markdown_body import MarkdownBody
    make_window(wait_model=False)
    body = MarkdownBody("Here:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nDone.")
    qtbot.addWidget(body)
    body.resize(500, 300)
    body.show()
    browser = body.browsers()[0]
    colours = set()
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            colours.add(it.fragment().charFormat().foreground().color().name())
            it += 1
        block = block.next()
    assert len(colours) >= 3   # keywords, names and plain text differ
    code_block = browser.document().findBlockByNumber(2)
    rect = browser.document().documentLayout().blockBoundingRect(code_block)
    browser.hover_at(rect.center().toPoint())
    button = browser.copy_block_button
    assert button is not None and button.isVisible()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "def add(a, b):\n    return a + b"
    browser.hover_at(QPoint(2, 2))   # back over the prose
    assert not button.isVisible()


def test_thinking_is_a_section_that_folds_once_the_answer_starts(qtbot, make_window):
    from chatgui.ui.chat.thinking import split_thinking
    assert split_thinking("<think>hmm</think>\n\nYes.").answer == "Yes."
    assert split_thinking("hmm, well</think>Yes.").thinking == "hmm, well"   # <think> was in the prompt
    assert split_thinking("Plain answer").thinking is None
    window = make_window(wait_model=False)
    chat = Chat(title="thinking")
    question = chat.append("user", "Is it?")
    reply = chat.append("assistant", "")
    HistoryStore().save(chat)
    window.refresh_chat_list()
    window.open_chat(chat.id)
    shown = widget(window, reply.id)
    shown.begin_stream("<think>Let me see")
    assert shown.thinking is not None and shown.thinking.is_open()
    assert "Let me see" in shown.thinking.browser.toPlainText() and "think" not in shown.shown_text()
    shown.stream_text("<think>Let me see. It is.</think>\n\nYes, it")
    assert not shown.thinking.is_open() and shown.shown_text().startswith("Yes, it")
    shown.end_stream("<think>Let me see. It is.</think>\n\nYes, it is.")
    qtbot.mouseClick(shown.thinking.toggle, Qt.MouseButton.LeftButton)
    assert shown.thinking.is_open() and not shown.thinking.browser.isHidden()
    assert question.id in {m.id for m in window.current.active_path()}


# settings slimmed ---------------------------------------------------------------------------
def test_settings_show_a_model_picker_and_fold_the_sampling_fields(qtbot, make_window, tiny_model_path):
    import shutil
    from chatgui.common.paths import models_dir
    shutil.copy(tiny_model_path, models_dir() / "other-model.gguf")
    window = make_window()
    panel = window.panel
    panel.set_installed_models(__import__("chatgui.ui.settings.panel", fromlist=["x"]).installed_models())
    combo = panel.model_combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert "other-model" in items and items[-1] == "Browse…" and "tiny" in items
    assert combo.currentText() == "tiny"   # the loaded one
    assert not panel.advanced.is_open() and panel.temperature.isHidden() is False
    assert not panel.temperature.isVisibleTo(panel) and panel.preset.isVisibleTo(panel)
    panel.advanced.toggle.click()
    assert panel.temperature.isVisibleTo(panel)
    combo.setCurrentIndex(items.index("other-model"))
    combo.activated.emit(items.index("other-model"))
    qtbot.waitUntil(lambda: window.model_controller.loaded.path.endswith("other-model.gguf"), timeout=30_000)
    assert combo.currentText() == "other-model"

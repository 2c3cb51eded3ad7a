"""The conversation draws only what is near the screen: a long chat opens at its end with a few
widgets, scrolling draws earlier messages without moving what is read, and far-away widgets go."""
from __future__ import annotations

import pytest

from chatgui.session import Chat
from chatgui.ui.chat.conversation_view import FIRST_BATCH, ConversationView

pytestmark = pytest.mark.usefixtures("qapp")


def long_chat(turns: int) -> Chat:
    chat = Chat(title="long")
    for i in range(turns):
        chat.append("user", f"question {i} " + "word " * (5 + i % 30))
        chat.append("assistant", f"answer {i}\n\n" + "text " * (20 + (i * 7) % 90))
    return chat


@pytest.fixture
def view(qtbot):
    view = ConversationView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    return view


def settle(qtbot, view) -> None:
    """Let the view draw or drop what it wants to (one batch per turn of the event loop)."""
    qtbot.waitUntil(lambda: not view._fill_timer.isActive(), timeout=5000)
    qtbot.wait(30)
    qtbot.waitUntil(lambda: not view._fill_timer.isActive(), timeout=5000)


def drawn_ids(view) -> list[str]:
    return [w.message_id for w in view.message_widgets()]


def opened(qtbot, view, turns: int):
    """A chat of `turns` turns shown and settled: (its active path's ids, the scroll bar)."""
    chat = long_chat(turns)
    view.show_chat(chat)
    settle(qtbot, view)
    return [m.id for m in chat.active_path()], view.verticalScrollBar()


def test_a_long_chat_opens_at_its_end_with_a_few_widgets(qtbot, view):
    chat = long_chat(300)
    view.show_chat(chat)
    path = [m.id for m in chat.active_path()]
    assert drawn_ids(view) == path[-FIRST_BATCH:]   # at once: the end, nothing else
    settle(qtbot, view)
    ids = drawn_ids(view)
    assert ids == path[-len(ids):] and len(ids) < 60
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum()
    assert view.widget_for(path[-1]).isVisible()


def test_scrolling_up_reaches_the_first_message_and_keeps_what_is_read_in_place(qtbot, view):
    path, bar = opened(qtbot, view, 200)
    most, steps = 0, 0
    while (view.drawn_range()[0] > 0 or bar.value() > 0) and steps < 500:
        # the message at the middle of the screen, and where it is
        read = next(w for w in view.message_widgets()
                    if view.widget_top(w.message_id) + w.height() > view.viewport().height() // 2)
        top = view.widget_top(read.message_id)
        step = min(bar.value(), view.viewport().height() // 2)
        bar.setValue(bar.value() - step)
        settle(qtbot, view)
        if view.widget_for(read.message_id) is not None:
            assert view.widget_top(read.message_id) == top + step   # moved by the scroll, nothing else
        lo, hi = view.drawn_range()
        assert drawn_ids(view) == path[lo:hi]   # one unbroken stretch of the path
        most = max(most, hi - lo)
        steps += 1
    assert view.drawn_range()[0] == 0 and bar.value() == 0
    assert drawn_ids(view)[0] == path[0]
    assert most < 60, "widgets far from the screen must be dropped"
    assert view.drawn_range()[1] < len(path)   # the end was dropped on the way up
    assert view.jump_button.isVisible()

    view.jump_to_latest()
    settle(qtbot, view)
    assert drawn_ids(view)[-1] == path[-1] and bar.value() == bar.maximum()


def test_scrolling_down_again_draws_the_rest(qtbot, view):
    path, bar = opened(qtbot, view, 120)
    for _ in range(400):
        if view.drawn_range()[0] == 0 and bar.value() == 0:
            break
        bar.setValue(bar.value() - view.viewport().height())
        settle(qtbot, view)
    for _ in range(400):
        if view.drawn_range()[1] == len(path) and bar.value() == bar.maximum():
            break
        bar.setValue(bar.value() + view.viewport().height())
        settle(qtbot, view)
    assert drawn_ids(view)[-1] == path[-1]


def test_a_message_being_edited_is_never_dropped(qtbot, view):
    chat = long_chat(150)
    path = chat.active_path()
    view.show_chat(chat)
    settle(qtbot, view)
    editing = view.widget_for(path[-2].id)
    editing.start_editing()
    editing.editor.setPlainText("my half-written change")
    bar = view.verticalScrollBar()
    for _ in range(100):
        bar.setValue(bar.value() - view.viewport().height())
        settle(qtbot, view)
    assert view.widget_for(path[-2].id) is editing and editing.editor.toPlainText() == "my half-written change"


def test_sending_in_a_long_chat_keeps_the_drawn_widgets(qtbot, view):
    chat = long_chat(100)
    view.show_chat(chat)
    settle(qtbot, view)
    before = {w.message_id: w for w in view.message_widgets()}
    question = chat.append("user", "one more question")
    view.show_chat(chat)
    after = view.message_widgets()
    assert after[-1].message_id == question.id
    assert all(before[w.message_id] is w for w in after[:-1] if w.message_id in before)
    assert len([w for w in after if w.message_id in before]) == len(before)


def test_another_chat_replaces_the_drawn_widgets(qtbot, view):
    first, second = long_chat(50), long_chat(3)
    view.show_chat(first)
    settle(qtbot, view)
    view.show_chat(second)
    settle(qtbot, view)
    assert drawn_ids(view) == [m.id for m in second.active_path()]


def scroll_up_to(qtbot, view, bar, index: int) -> None:
    for _ in range(400):
        if view.drawn_range()[0] <= index:
            return
        bar.setValue(max(0, bar.value() - view.viewport().height()))
        settle(qtbot, view)


def edit_on_screen(view):
    widget = next(w for w in view.message_widgets()
                  if w.role == "user" and 0 <= view.widget_top(w.message_id) < view.viewport().height())
    widget.start_editing()
    widget.editor.setPlainText("my long unsent edit")
    return widget


def test_jumping_to_the_latest_keeps_an_open_edit_far_above(qtbot, view):
    path, bar = opened(qtbot, view, 200)
    scroll_up_to(qtbot, view, bar, 300)
    editing = edit_on_screen(view)
    view.jump_to_latest()
    settle(qtbot, view)
    assert view.widget_for(editing.message_id) is editing and editing.editor.toPlainText() == "my long unsent edit"
    assert drawn_ids(view)[-1] == path[-1]


def test_a_new_message_at_the_end_keeps_an_open_edit_far_above(qtbot, view):
    path, bar = opened(qtbot, view, 200)
    chat = view._chat
    scroll_up_to(qtbot, view, bar, 300)
    editing = edit_on_screen(view)
    chat.append("user", "a new question")
    view.show_chat(chat)   # as after sending: to the end
    settle(qtbot, view)
    assert view.widget_for(editing.message_id) is editing and editing.editor is not None
    assert drawn_ids(view)[-1] == chat.active_path()[-1].id

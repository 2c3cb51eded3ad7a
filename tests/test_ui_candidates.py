"""'Generate 3 answers' (issue 16, in the app): three answers to the last question, decoded as one
batch, fill < 1/3 > < 2/3 > < 3/3 > in one go and are saved."""
from PySide6.QtCore import Qt

from chatgui.store import HistoryStore


def ask(qtbot, window, text, **sampling):
    for name, value in sampling.items():
        getattr(window.panel, name).setValue(value)
    window.input_bar.input.setPlainText(text)
    qtbot.mouseClick(window.input_bar.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=60_000)


def test_three_answers_at_once_fill_the_version_navigator(qtbot, make_window):
    window = make_window()
    ask(qtbot, window, "Name a colour", max_new_tokens=6)
    question = window.current.active_path()[0]
    assert len(window.current.children(question.id)) == 1
    window.candidates_action.trigger()                       # Chat > Generate 3 answers
    assert window.replies.busy
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=60_000)
    answers = window.current.children(question.id)
    assert len(answers) == 4                                 # the first reply and three new ones
    new = answers[1:]
    assert all(a.content for a in new) and all(a.meta.token_data for a in new)
    seeds = [a.meta.seed for a in new]
    assert seeds == [seeds[0], seeds[0] + 1, seeds[0] + 2]   # one batch: seed + i for candidate i
    shown = window.current.active_path()[-1]
    assert shown.id == new[0].id and window.current.sibling_index(shown.id) == (1, 4)
    assert window.view.widget_for(shown.id).text() == shown.content
    assert window.library.flush(5)
    saved = HistoryStore().load(window.current.id)
    assert [m.content for m in saved.children(question.id)] == [a.content for a in answers]


def test_stop_ends_all_three(qtbot, make_window):
    window = make_window()
    # A fixed seed whose three answers run on: with a random one, the random test model could
    # say end-of-text at once, and an answer that ends before its first word never begins.
    window.panel.random_seed.setChecked(False)
    window.panel.seed.setValue(11)
    ask(qtbot, window, "Tell me a long story", max_new_tokens=4)
    window.panel.max_new_tokens.setValue(2000)
    window.candidates_action.trigger()

    def begun_or_done():      # (under load the others' first words may come after the shown one's)
        r = window.replies
        return (r.active is None or bool(r.active.text)) and all(o.text for o in r._others.values())
    qtbot.waitUntil(begun_or_done, timeout=60_000)
    window.stop_reply()
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=30_000)
    question = window.current.active_path()[0]
    answers = window.current.children(question.id)[1:]
    assert len(answers) == 3
    # What Stop must prevent is any answer running on to its 2000-token limit.
    for answer in answers:
        assert answer.content and answer.meta.finish_reason == "cancelled"
        assert len(answer.meta.token_data) < 2000

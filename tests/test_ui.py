"""The main window end to end, on the tiny random-weight model (fast, garbage text)."""
from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtWidgets import QWidget

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.common.records import TokenRecord
from chatgui.store import HistoryStore, StoreError
from chatgui.session import Chat

REPLY_TIMEOUT_MS = 30_000


def set_sampling(window, **values):
    panel = window.panel
    boxes = {"temperature": panel.temperature, "max_new_tokens": panel.max_new_tokens, "top_k": panel.top_k}
    for name, value in values.items():
        if name == "seed":
            panel.random_seed.setChecked(value is None)
            if value is not None:
                panel.seed.setValue(value)
        else:
            boxes[name].setValue(value)


def send_and_wait(qtbot, window, text="Hello there", **sampling):
    set_sampling(window, **({"max_new_tokens": 24} | sampling))
    window.input_bar.input.setPlainText(text)
    qtbot.mouseClick(window.input_bar.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    return window.current.active_path()[-1]


def start_long_reply(qtbot, window, text):
    """Start a reply and wait until it has some text while still streaming. The tiny model may
    end a reply early by chance: then answer again (a fresh random seed) and retry."""
    set_sampling(window, max_new_tokens=200, temperature=1.0, seed=None)
    window.send_message(text)
    for _attempt in range(10):
        reply_id = window.replies.active.message_id
        message = window.current.messages[reply_id]
        qtbot.waitUntil(lambda: not window.replies.busy or len(message.content) > 5, timeout=REPLY_TIMEOUT_MS)
        if window.replies.busy:
            return reply_id
        window.regenerate(reply_id)
    pytest.fail("the tiny model never gave a long reply")


def widget(window, message_id):
    found = window.view.widget_for(message_id)
    assert found is not None
    return found


def test_widgets_have_object_and_accessible_names(make_window):
    window = make_window(wait_model=False)
    for name in ("chatList", "conversationView", "messageInput", "sendButton", "stopButton", "settingsPanel",
                 "statusBar"):
        found = window.findChild(QWidget, name)
        assert found is not None, name
        assert found.accessibleName(), name


def test_send_streams_reply_with_full_metadata(qtbot, make_window, tiny_model_path):
    window = make_window()
    updates = []
    original = window.replies._flush

    def counting_flush():
        updates.append(time.perf_counter())
        original()

    window.replies._flush_timer.timeout.disconnect()
    window.replies._flush_timer.timeout.connect(counting_flush)
    reply = send_and_wait(qtbot, window, "Say something", max_new_tokens=40, temperature=1.0)

    user = window.current.active_path()[0]
    assert (user.role, user.content) == ("user", "Say something")
    assert reply.role == "assistant" and reply.content
    meta = reply.meta
    assert meta.model == "tiny" and meta.finish_reason in ("length", "stop")
    assert meta.sampling["max_new_tokens"] == 40 and isinstance(meta.seed, int)
    assert 0 < meta.tokens == len(meta.token_data) <= 40
    first = meta.token_data[0]
    assert type(first) is TokenRecord and first.has_sampled and 1 <= len(first.alts) <= 5
    # The final text may add what the stream held back (an unfinished UTF-8 character).
    assert reply.content.startswith("".join(t.text for t in meta.token_data))
    assert meta.time_to_first_token > 0 and meta.tokens_per_second is not None
    assert widget(window, reply.id).text() == reply.content
    assert window.current.title == "Say something"
    assert "Context:" in window.status.context_label.text()
    # a speed where there is one to say: a reply of a single token has none (never "0.0 tok/s")
    assert "First token" in window.status.speed_label.text()
    assert "tok/s" in window.status.speed_label.text() or meta.tokens <= 1
    # Updates were coalesced: never more often than the timer allows.
    gaps = [b - a for a, b in zip(updates, updates[1:])]
    assert all(g >= 0.025 for g in gaps), gaps
    # The model file's hash arrives after the first reply and is recorded in its meta.
    from chatgui.common.io import sha256_file
    qtbot.waitUntil(lambda: reply.meta.model_sha256 == sha256_file(tiny_model_path), timeout=10_000)


def test_enter_sends_and_shift_enter_adds_a_line(qtbot, make_window):
    window = make_window()
    set_sampling(window, max_new_tokens=3)
    box = window.input_bar.input
    qtbot.keyClicks(box, "first line")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(box, "second line")
    assert box.toPlainText() == "first line\nsecond line" and not window.current.messages
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.toPlainText() == ""
    assert window.current.active_path()[0].content == "first line\nsecond line"
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)


def test_sending_keeps_the_widgets_of_earlier_messages(qtbot, make_window):
    window = make_window()
    send_and_wait(qtbot, window, "One", max_new_tokens=3)
    before = window.view.message_widgets()
    send_and_wait(qtbot, window, "Two", max_new_tokens=3)
    after = window.view.message_widgets()
    assert len(after) == 4 and after[:2] == before   # not re-rendered


def test_empty_message_is_not_sent(make_window):
    window = make_window()
    window.input_bar.input.setPlainText("   \n ")
    assert window.send_message() is False
    assert not window.current.messages


def test_stop_keeps_partial_answer(qtbot, make_window):
    window = make_window()
    reply_id = start_long_reply(qtbot, window, "Tell me a long story")
    assert window.input_bar.stop_button.isVisible() and not window.input_bar.send_button.isVisible()
    request_id = window.replies.active.request_id
    started = time.perf_counter()
    qtbot.mouseClick(window.input_bar.stop_button, Qt.MouseButton.LeftButton)
    assert not window.replies.busy and window.input_bar.send_button.isVisible()
    partial = window.current.messages[reply_id].content
    assert partial and widget(window, reply_id).text() == partial
    # The worker stops between two tokens and reports back.
    qtbot.waitUntil(lambda: request_id not in window.replies._stopped, timeout=2000)
    assert time.perf_counter() - started < 1.0
    message = window.current.messages[reply_id]
    assert message.content == partial
    assert message.meta.finish_reason == "cancelled" and message.meta.model == "tiny"
    assert message.meta.tokens < 200
    assert window.library.flush(5)   # (the save is queued for the writer thread: under load it may lag)
    saved = HistoryStore().load(window.current.id)
    assert saved.messages[reply_id].content == partial


def test_stop_before_the_first_token_keeps_only_the_question(qtbot, make_window):
    window = make_window()
    window.send_message("Never mind")
    window.stop_reply()   # no event has been processed: nothing has arrived yet
    assert not window.replies.busy
    assert [m.role for m in window.current.active_path()] == ["user"]
    qtbot.wait(300)   # the worker's late report about that request changes nothing
    assert [m.role for m in window.current.active_path()] == ["user"]
    reply = send_and_wait(qtbot, window, "Now answer", max_new_tokens=4)
    assert reply.role == "assistant"


def test_escape_shortcut_stops(qtbot, make_window):
    window = make_window()
    assert window.stop_action.shortcut().toString() == "Esc"
    start_long_reply(qtbot, window, "Go on and on")
    window.stop_action.trigger()
    assert not window.replies.busy


def test_regenerate_keeps_both_answers_browsable(qtbot, make_window):
    window = make_window()
    first = send_and_wait(qtbot, window, "Pick a number", temperature=1.0)
    qtbot.mouseClick(widget(window, first.id).regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    second = window.current.active_path()[-1]
    assert second.id != first.id and second.parent_id == first.parent_id
    nav = widget(window, second.id).navigator
    assert nav is not None and nav.text() == "< 2/2 >"
    qtbot.mouseClick(nav.prev_button, Qt.MouseButton.LeftButton)
    shown = window.current.active_path()[-1]
    assert shown.id == first.id
    assert widget(window, first.id).navigator.text() == "< 1/2 >"
    assert widget(window, first.id).text() == first.content


def test_edit_and_resend_branches(qtbot, make_window):
    window = make_window()
    send_and_wait(qtbot, window, "First question")
    old_answer = window.current.active_path()[-1]
    send_and_wait(qtbot, window, "Second question")
    q2 = window.current.active_path()[2]
    editor_owner = widget(window, q2.id)
    editor_owner.start_editing()
    editor_owner.editor.setPlainText("Second question, edited")
    send = editor_owner.findChild(QWidget, "editSendButton")
    qtbot.mouseClick(send, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    path = window.current.active_path()
    assert [m.role for m in path] == ["user", "assistant", "user", "assistant"]
    assert path[2].content == "Second question, edited" and path[2].parent_id == q2.parent_id
    assert path[1].id == old_answer.id   # the earlier turn is shared by both branches
    nav = widget(window, path[2].id).navigator
    assert nav.text() == "< 2/2 >"
    qtbot.mouseClick(nav.prev_button, Qt.MouseButton.LeftButton)
    assert window.current.active_path()[2].id == q2.id   # the old branch is whole


def test_settings_reach_the_engine(qtbot, make_window):
    window = make_window()
    reply = send_and_wait(qtbot, window, "Count", temperature=0.0, max_new_tokens=5, seed=1234)
    assert reply.meta.tokens <= 5
    assert reply.meta.sampling["temperature"] == 0.0
    assert reply.meta.sampling["max_new_tokens"] == 5
    assert reply.meta.sampling["seed"] == 1234 and reply.meta.seed == 1234
    # Greedy decoding with the same settings gives the same answer.
    qtbot.mouseClick(widget(window, reply.id).regenerate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    assert window.current.active_path()[-1].content == reply.content


def test_presets_and_reset(make_window):
    window = make_window(wait_model=False)
    panel = window.panel
    panel.apply_preset("Precise")
    assert panel.temperature.value() == pytest.approx(0.2) and panel.preset.currentText() == "Precise"
    panel.temperature.setValue(1.7)
    assert panel.preset.currentText() == "Custom"
    panel.findChild(QWidget, "resetSamplingButton").click()
    assert panel.sampling().temperature == pytest.approx(0.7) and panel.preset.currentText() == "Balanced"


def test_the_advanced_sampling_fields_are_made_from_the_sampler_registry(make_window):
    from chatgui.common.samplers import SAMPLER_FIELDS
    from chatgui.common.types import SamplingSettings

    panel = make_window(wait_model=False).panel
    for f in SAMPLER_FIELDS:       # one field per setting, labelled, in the registry's order
        widget = getattr(panel, f.name)
        assert widget.parentWidget().layout().labelForField(widget).text() == f.label
    names = ("repeatPenaltySpin", "dryMultiplierSpin", "drySequenceBreakersEdit", "xtcThresholdSpin")
    assert all(panel.advanced.findChild(QWidget, name) for name in names)
    panel.dry_multiplier.setValue(0.8)
    panel.xtc_probability.setValue(0.5)
    panel.dry_sequence_breakers.setText('["\\n", "##"]')
    panel.dry_sequence_breakers.textEdited.emit(panel.dry_sequence_breakers.text())
    s = panel.sampling()
    assert (s.dry_multiplier, s.xtc_probability, s.dry_sequence_breakers) == (0.8, 0.5, ("\n", "##"))
    panel.dry_sequence_breakers.setText('["\\n", ')                      # mid-edit: not a list yet
    panel.dry_sequence_breakers.textEdited.emit(panel.dry_sequence_breakers.text())
    assert panel.sampling().dry_sequence_breakers == ("\n", "##") and "JSON" in panel.dry_sequence_breakers.toolTip()
    panel.set_sampling(SamplingSettings(), random_seed=True)
    assert panel.sampling() == SamplingSettings()
    assert panel.dry_sequence_breakers.text() == '["\\n", ":", "\\"", "*"]'


def test_history_survives_restart(qtbot, make_window):
    window = make_window()
    reply = send_and_wait(qtbot, window, "Remember me")
    chat_id = window.current.id
    window.close()
    again = make_window(wait_model=False)
    assert chat_id in again.chat_list.chat_ids()
    again.open_chat(chat_id)
    path = again.current.active_path()
    assert [m.content for m in path] == ["Remember me", reply.content]
    assert widget(again, path[0].id).text() == "Remember me"


def test_corrupt_file_is_quarantined_and_reported(qtbot, make_window):
    store = HistoryStore()
    good = Chat(title="Good chat")
    good.append("user", "hello")
    store.save(good)
    store.dir.mkdir(parents=True, exist_ok=True)  # a chat file of the old layout, met by the migration
    (store.dir / "broken.json").write_text("{ not json", encoding="utf-8")
    window = make_window(wait_model=False)
    qtbot.waitUntil(lambda: not window.migration.running, timeout=10_000)   # (moved after the window shows)
    saved_ids = [i for i in window.chat_list.chat_ids() if i != window.current.id]   # not the new empty chat
    assert saved_ids == [good.id]
    notice = window.notices.get("store-problems")
    assert notice is not None and "broken.json" in notice.text()
    assert (store.dir / "broken.json.corrupt").exists() or list(store.dir.glob("broken.json*corrupt*"))


def test_save_failure_is_reported_and_retried(qtbot, make_window, monkeypatch):
    window = make_window()
    real_save = window.store.save_async

    def failing(chat, on_done=None):   # the writer thread reports a full disk
        threading.Thread(target=on_done, args=(chat.id, StoreError("Could not save the chat: the disk is full."))
                         ).start()

    monkeypatch.setattr(window.store, "save_async", failing)
    send_and_wait(qtbot, window, "Will this be saved?")
    qtbot.waitUntil(lambda: window.notices.get("save-error") is not None, timeout=5000)
    assert "disk is full" in window.notices.get("save-error").text()
    assert window.current.id in window.library.unsaved
    monkeypatch.setattr(window.store, "save_async", real_save)
    send_and_wait(qtbot, window, "And now?")
    qtbot.waitUntil(lambda: window.notices.get("save-error") is None and not window.library.unsaved, timeout=5000)
    assert window.library.flush(5)
    assert len(HistoryStore().load(window.current.id).messages) == 4


def test_closing_mid_reply_saves_and_exits_quickly(qtbot, make_window):
    window = make_window()
    reply_id = start_long_reply(qtbot, window, "A long answer please")
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 2.0
    assert not window.engine.runner.busy and window.engine_stopped
    saved = HistoryStore().load(window.current.id).messages[reply_id]
    assert saved.content and saved.meta.finish_reason == "cancelled"


def test_bad_model_file_reports_error_and_keeps_previous_model(qtbot, make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    window.panel.model_path.setText(str(bad))
    qtbot.mouseClick(window.panel.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.notices.get("load-error") is not None, timeout=10_000)
    text = window.notices.get("load-error").text()
    # A plain sentence (the engine's exact words are in the tooltip), naming the file.
    assert "bad.gguf" in text and "still in use" in text and "b'" not in text
    assert window.status.model_label.text() == "tiny"   # the file's name
    reply = send_and_wait(qtbot, window, "Still there?")
    assert reply.role == "assistant" and reply.content and reply.meta.model == "tiny"


def test_prompt_too_long_keeps_message_and_says_so(qtbot, make_window):
    window = make_window()
    window.send_message("word " * 3000)   # the tiny model's context is 256 tokens
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    notice = window.notices.get("reply-error")
    assert notice is not None and "too long" in notice.text()
    path = window.current.active_path()
    assert [m.role for m in path] == ["user"] and path[0].content.startswith("word word")


def test_megabyte_paste_stays_responsive(qtbot, make_window):
    window = make_window()
    big = "lorem ipsum dolor sit amet " * 40_000   # ~1 MB on one line: the worst case for layout
    mime = QMimeData()
    mime.setText(big)
    started = time.perf_counter()
    window.input_bar.input.insertFromMimeData(mime)
    window.input_bar.input.insertPlainText("Summarise this:")
    qtbot.wait(1)
    assert time.perf_counter() - started < 0.1
    assert window.input_bar.attachment_row.isVisible()
    window.send_message()
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    user = window.current.active_path()[0]
    assert user.content == "Summarise this:\n\n" + big
    assert "too long" in window.notices.get("reply-error").text()


def test_chat_list_new_rename_search_delete(qtbot, make_window, monkeypatch):
    window = make_window()
    send_and_wait(qtbot, window, "Apples are red")
    apples = window.current.id
    window.new_chat()
    send_and_wait(qtbot, window, "Bananas are yellow")
    bananas = window.current.id
    assert window.chat_list.chat_ids()[:2] == [bananas, apples]   # newest first
    window.rename_chat(apples, "Fruit facts")
    qtbot.waitUntil(lambda: "Fruit facts" in window.chat_list.titles(), timeout=2000)
    window.chat_list.search.setText("yellow")   # message text, not the title
    qtbot.waitUntil(lambda: window.chat_list.chat_ids() == [bananas], timeout=2000)
    window.chat_list.search.setText("fruit")
    qtbot.waitUntil(lambda: window.chat_list.chat_ids() == [apples], timeout=2000)
    window.chat_list.search.clear()
    qtbot.waitUntil(lambda: len(window.chat_list.chat_ids()) == 2, timeout=2000)
    assert window.delete_chat(apples) is True               # to the trash, no question asked
    assert apples not in window.chat_list.chat_ids()
    assert apples not in HistoryStore().search("apples") and apples not in [c.id for c in HistoryStore().list_chats()]


def test_export_markdown_and_json(qtbot, make_window, tmp_path):
    window = make_window()
    reply = send_and_wait(qtbot, window, "Export me")
    assert window.export_chat(str(tmp_path / "chat.md"), "markdown")
    assert window.export_chat(str(tmp_path / "chat.json"), "json")
    assert window.history_actions.jobs.wait(30)   # written off the GUI thread
    markdown = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "Export me" in markdown and "## Assistant" in markdown
    data = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert any(m["id"] == reply.id for m in data["messages"])


def test_system_prompt_is_per_chat(qtbot, make_window):
    window = make_window()
    window.panel.system_prompt.setPlainText("You are terse.")
    reply = send_and_wait(qtbot, window, "Hi")
    assert window.current.system_prompt == "You are terse."
    assert reply.content
    window.new_chat()
    assert window.panel.system_prompt.toPlainText() == ""


def test_settings_and_geometry_persist(qtbot, make_window):
    window = make_window(wait_model=False)
    window.panel.temperature.setValue(0.33)
    window.panel.max_new_tokens.setValue(77)
    window.close()
    again = make_window(wait_model=False)
    assert again.panel.temperature.value() == pytest.approx(0.33)
    assert again.panel.max_new_tokens.value() == 77
    assert again.settings.window_geometry


@pytest.mark.real_model
def test_real_default_model_answers(qtbot, make_window, real_model_path, monkeypatch):
    monkeypatch.setenv("CHATGUI_MODEL", str(real_model_path))
    window = make_window()
    assert window.status.model_label.text() == "SmolLM2 135M Instruct"   # its catalog name, as everywhere
    assert "smollm2" in window.model_controller.loaded.name.lower()
    reply = send_and_wait(qtbot, window, "What is the capital of France?", temperature=0.0, max_new_tokens=16)
    assert reply.content.strip()
    assert reply.meta.tokens <= 16 and reply.meta.model == window.model_controller.loaded.name
    assert window.view.widget_for(reply.id).info_label.text().startswith("SmolLM2 135M Instruct ·")   # the header too


def test_a_tokenizer_warning_is_shown_when_the_model_loads(qtbot, make_window, tmp_path):
    from tiny_gguf import write_tiny_model
    odd = write_tiny_model(tmp_path / "odd.gguf", pre_tokenizer="no-such-pre-tokenizer")
    window = make_window()
    assert window.notices.get("model-warnings") is None          # the tiny model's own tokenizer is known
    window.panel.model_path.setText(str(odd))
    qtbot.mouseClick(window.panel.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.notices.get("model-warnings") is not None, timeout=10_000)
    assert "no-such-pre-tokenizer" in window.notices.get("model-warnings").text()


def test_a_reopened_chat_reads_token_records_only_when_the_token_view_shows_them(qtbot, make_window):
    window = make_window()
    reply = send_and_wait(qtbot, window, "Tokens later", max_new_tokens=5)
    records = reply.meta.token_data
    assert records
    chat_id = window.current.id
    window.close()
    again = make_window()
    again.open_chat(chat_id)
    stored = again.current.messages[reply.id]
    assert stored.meta.token_data is None                 # left on disk when the chat opened
    widget = again.view.widget_for(reply.id)
    assert widget.token_body is None
    again.explain.token_view_action.trigger()              # View > Token view
    assert widget.shown_tokens() == records                # read now, for the reply on screen...
    assert stored.meta.token_data is None                 # ...and kept by its widget only
    assert widget.token_body is not None and widget.token_body.isVisible()


def reopened_with_prepare_recorded(qtbot, window, monkeypatch):
    """A chat with one reply, left for a new chat and opened again, with each ChatModel.prepare
    call's messages recorded: (the reply, the list of calls)."""
    reply = send_and_wait(qtbot, window, "Prepare me", max_new_tokens=5)
    chat_id = window.current.id
    window.new_chat()
    model = window.engine.worker.model
    prepared, prepare = [], model.prepare
    monkeypatch.setattr(model, "prepare", lambda messages, *a: prepared.append(messages) or prepare(messages, *a))
    window.open_chat(chat_id)
    return reply, prepared


def test_an_opened_chat_is_prepared_while_the_user_reads_and_types(qtbot, make_window, monkeypatch):
    """Its context is computed ahead (ChatModel.prepare), and a message sent meanwhile is answered."""
    window = make_window()
    reply, prepared = reopened_with_prepare_recorded(qtbot, window, monkeypatch)
    qtbot.waitUntil(lambda: bool(prepared), timeout=10_000)
    assert prepared[-1][-1].content == reply.content and len(prepared) == 1
    answer = send_and_wait(qtbot, window, "And now?", max_new_tokens=5)
    assert answer.role == "assistant" and answer.content and answer.parent_id == window.current.active_path()[-2].id


def test_a_finished_preparation_is_not_run_again_by_later_jobs(qtbot, make_window, monkeypatch):
    window = make_window()
    _reply, prepared = reopened_with_prepare_recorded(qtbot, window, monkeypatch)
    qtbot.waitUntil(lambda: window.engine._preparing is not None and window.engine._preparing.done.is_set(),
                    timeout=10_000)
    done = threading.Event()
    window.engine.run(done.set)   # e.g. a token count or the inspector
    qtbot.waitUntil(done.is_set, timeout=5000)
    qtbot.wait(200)
    assert len(prepared) == 1

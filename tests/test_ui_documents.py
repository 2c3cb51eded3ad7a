"""Documents in the window (issue 32): attaching files to a message, the prompt made from them,
knowledge folders and the cited sources under a reply. The tiny random-weight model writes
garbage, so a reply that cites is written into the chat by the test where citations are checked."""
from __future__ import annotations

import json
import re

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.common.records import Attachment, attachments_from_meta
from chatgui.documents import Source
from chatgui.ui.documents.chips import SourcesRow
from chatgui.ui.documents.controller import DocumentsController

from pdf_maker import write_pdf
from test_ui_window import assert_inside_conversation
from tiny_gguf import write_tiny_model

TIMEOUT_MS = 30_000
FACT = "The lighthouse keeper's cat is called Marmalade and sleeps on the third step."


@pytest.fixture(scope="module")
def roomy_model_path(tmp_path_factory):
    """The tiny model with a 4,096-token context: room for a file in the prompt."""
    return write_tiny_model(tmp_path_factory.mktemp("roomy") / "roomy.gguf", context=4096)


@pytest.fixture
def window_maker(make_window, roomy_model_path, monkeypatch):
    monkeypatch.setenv("CHATGUI_MODEL", str(roomy_model_path))
    monkeypatch.setattr(DocumentsController, "separate_reader", False)   # no child process per test

    def make(wait_model=True, **kwargs):
        window = make_window(wait_model=wait_model, **kwargs)
        window.panel.max_new_tokens.setValue(8)
        window.sent = []   # the messages each reply was asked for
        generate = window.engine.generate

        def recording(messages, *args, **kwargs):
            window.sent.append(messages)
            return generate(messages, *args, **kwargs)
        window.engine.generate = recording
        return window
    return make


def attach(qtbot, window, *paths):
    before = len(window.documents.pending)
    window.documents.attach_files([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.documents.reading == 0, timeout=TIMEOUT_MS)
    return window.documents.pending[before:]


def send(qtbot, window, text):
    window.input_bar.input.setPlainText(text)
    assert window.send_message()
    qtbot.waitUntil(lambda: not window.documents.preparing and not window.replies.busy, timeout=TIMEOUT_MS)
    path = window.current.active_path()
    return path[-2], path[-1]


def filler(n: int) -> str:
    words = ["harbour", "granite", "tide", "rope", "gull", "lantern", "fog", "keel", "mast", "lighthouse"]
    return "\n\n".join(" ".join(words[(i * 7 + j) % 10] for j in range(60)) + "." for i in range(n))


def test_an_attached_file_shows_its_tokens_goes_into_the_prompt_and_reloads(qtbot, window_maker, tmp_path):
    window = window_maker()
    notes = tmp_path / "notes.txt"
    notes.write_text(f"Harbour notes.\n\n{FACT}\n")
    [attached] = attach(qtbot, window, notes)
    assert attached.chip.tokens > 10
    [chip] = window.documents.chips.chips
    assert "notes.txt" in chip.text() and f"{attached.chip.tokens} tokens" in chip.text()   # seen before sending
    assert window.documents.chips.isVisible()
    qtbot.waitUntil(lambda: chip.label.width() >= chip.label.sizeHint().width())   # seen whole, not elided

    user, reply = send(qtbot, window, "What is the cat called?")
    assert user.content == "What is the cat called?"   # the question as typed; the file is its attachment
    prompt = window.sent[-1][-1].content
    assert FACT in prompt and "What is the cat called?" in prompt and "[1] notes.txt" in prompt
    [saved] = user.meta.attachments
    assert saved.name == "notes.txt" and saved.mode == "whole" and FACT in saved.text
    assert reply.meta.sources[0]["path"] == str(notes)
    assert not window.documents.chips.chips and not window.documents.pending   # the composer is empty again
    shown = window.view.widget_for(user.id).documents.widget.texts()
    assert any("notes.txt" in t and "whole" in t for t in shown)
    sent_chip = window.view.widget_for(user.id).documents.widget.chips[0]
    qtbot.waitUntil(lambda: sent_chip.label.width() >= sent_chip.label.sizeHint().width())

    exported = tmp_path / "chat.json"
    assert window.export_chat(str(exported), "json")
    qtbot.waitUntil(lambda: exported.exists(), timeout=TIMEOUT_MS)
    window.jobs.wait(10)
    assert FACT in json.loads(exported.read_text())["messages"][0]["meta"]["attachments"][0]["text"]
    markdown = tmp_path / "chat.md"
    assert window.export_chat(str(markdown), "markdown")
    qtbot.waitUntil(lambda: markdown.exists() and "notes.txt" in markdown.read_text(), timeout=TIMEOUT_MS)

    chat_id = window.current.id
    notes.unlink()   # the chat keeps the file's text
    window.close()
    again = window_maker(wait_model=True)
    again.open_chat(chat_id)
    reloaded = again.current.messages[user.id]
    assert reloaded.meta.attachments[0].text == saved.text
    assert any("notes.txt" in t for t in again.view.widget_for(user.id).documents.widget.texts())
    send(qtbot, again, "And where does it sleep?")   # later turns still carry the file
    first_question = next(m for m in again.sent[-1] if m.role == "user")
    assert FACT in first_question.content


def test_a_file_too_big_for_the_context_goes_in_as_relevant_passages(qtbot, window_maker, tmp_path):
    window = window_maker()
    big = tmp_path / ("logbook-of-the-harbour-master-" * 4 + ".md")   # a long name widens nothing
    big.write_text(filler(80) + "\n\n" + FACT + "\n\n" + filler(80))
    [attached] = attach(qtbot, window, big)
    assert attached.chip.tokens > 4096
    user, _reply = send(qtbot, window, "What is the lighthouse keeper's cat called?")
    [saved] = user.meta.attachments
    assert saved.mode == "retrieved" and saved.passages >= 1
    prompt = window.sent[-1][-1].content
    assert FACT in prompt and len(prompt) < len(big.read_text()) // 2
    assert any("relevant passages" in t for t in window.view.widget_for(user.id).documents.widget.texts())
    assert user.meta.prompt == prompt
    # the prompt was counted with the model's tokenizer: it fits, with room for the reply
    assert _reply.meta.prompt_tokens <= 4096 - 8 and "reply-error" not in window.notices._notices
    headings = re.findall(r"^\[\d+\] logbook-of", window.sent[-1][-1].content, re.MULTILINE)
    assert len(headings) == len(_reply.meta.sources) > 1
    reply = window.view.widget_for(_reply.id)
    assert reply.documents.sources_row.labels()[0].startswith("[1] logbook-of")
    window.resize(900, 600)
    assert_inside_conversation(window)


def test_a_broken_pdf_gets_a_plain_message_and_nothing_is_lost(qtbot, window_maker, tmp_path, monkeypatch):
    monkeypatch.setattr(DocumentsController, "separate_reader", True)   # the window's real reader process
    window = window_maker()
    report = write_pdf(tmp_path / "report.pdf", [["Page one text."], [FACT]])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf at all\n")
    window.input_bar.input.setPlainText("my question, typed before")
    attach(qtbot, window, report)
    attach(qtbot, window, broken)
    notice = window.notices._notices.get("attach-error")
    assert notice is not None and "broken.pdf" in notice.text()
    assert [a.chip.name for a in window.documents.pending] == ["report.pdf"]
    assert "2 pages" in window.documents.chips.texts()[0]
    assert window.input_bar.input.toPlainText() == "my question, typed before"
    send(qtbot, window, "What is the cat called?")
    assert "[page 2]" in window.sent[-1][-1].content and FACT in window.sent[-1][-1].content


def test_a_pasted_and_a_dropped_file_are_attached(qtbot, window_maker, tmp_path):
    window = window_maker(wait_model=False)
    pasted, dropped = tmp_path / "pasted.md", tmp_path / "dropped.csv"
    pasted.write_text("# Pasted\n\nsome text\n")
    dropped.write_text("a,b\n1,2\n")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(pasted))])
    window.input_bar.input.insertFromMimeData(mime)
    drop_mime = QMimeData()
    drop_mime.setUrls([QUrl.fromLocalFile(str(dropped))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, drop_mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()   # the window takes files (Qt sends the drop only after this)
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, drop_mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: len(window.documents.pending) == 2, timeout=TIMEOUT_MS)
    assert sorted(a.chip.name for a in window.documents.pending) == ["dropped.csv", "pasted.md"]
    assert window.input_bar.input.toPlainText() == ""   # the path was not pasted as text
    chip = window.documents.chips.chips[0]
    chip.remove_button.click()
    assert len(window.documents.pending) == 1 and len(window.documents.chips.chips) == 1


def knowledge_folder(tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "harbour.md").write_text(filler(3) + "\n\n" + FACT + "\n")
    (folder / "weather.txt").write_text("Fog rolls in most mornings in autumn.\n")
    (folder / "damaged.pdf").write_bytes(b"%PDF-1.4\nnot really\n")
    return folder


def index_folder(qtbot, window, folder):
    page = window.documents.open_page()
    page.add_folder(str(folder))
    qtbot.waitUntil(lambda: window.documents.last_summary is not None, timeout=TIMEOUT_MS)
    return page


def test_a_knowledge_folder_is_indexed_retrieved_and_cited(qtbot, window_maker, tmp_path):
    window = window_maker()
    page = index_folder(qtbot, window, knowledge_folder(tmp_path))
    assert window.documents.last_summary.indexed == 2 and window.documents.last_summary.failed == 1
    [(name, reason)] = page.failures()
    assert name == "damaged.pdf" and reason
    assert window.documents.knowledge_toggle.isVisible() and window.documents.knowledge_toggle.isChecked()

    user, reply = send(qtbot, window, "What is the lighthouse keeper's cat called?")
    prompt = window.sent[-1][-1].content
    assert FACT in prompt and "harbour.md" in prompt and "[1]" in prompt
    assert user.meta.knowledge is True
    numbers = {s["number"]: s for s in reply.meta.sources}
    cited = next(n for n, s in numbers.items() if FACT in s["text"])
    # the tiny model writes noise: a reply that cites is put in its place
    window.current.update_content(reply.id, f"The cat is called Marmalade [{cited}].")
    window.show_current()
    shown = window.view.widget_for(reply.id)
    row = shown.documents.sources_row
    assert [s.number for s in row.sources] == [cited] and "harbour.md" in row.labels()[0]
    assert f"cite:{cited}" in shown.body.browsers()[0].document().toMarkdown()
    popup = shown.documents.open_link(f"cite:{cited}")   # what a click on [n] does
    assert popup is not None and FACT in popup.passage.toPlainText() and popup.open_button.isEnabled()
    popup.close()


def test_with_the_toggle_off_nothing_is_retrieved(qtbot, window_maker, tmp_path):
    window = window_maker()
    index_folder(qtbot, window, knowledge_folder(tmp_path))
    window.documents.knowledge_toggle.setChecked(False)
    user, reply = send(qtbot, window, "What is the lighthouse keeper's cat called?")
    assert window.sent[-1][-1].content == "What is the lighthouse keeper's cat called?"
    assert reply.meta.sources is None and not user.meta.prompt
    window.new_chat()   # a new chat starts without the folders; the first one keeps its choice
    assert not window.documents.knowledge_toggle.isChecked()


def test_the_attachment_record_reads_what_it_wrote_and_refuses_junk():
    record = Attachment("a.pdf", "/x/a.pdf", "pdf", 120, 3, "retrieved", 2, None, "text")
    assert Attachment.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert Attachment.from_dict({"name": 3}) is None and Attachment.from_dict("a.pdf") is None
    odd = Attachment.from_dict({"name": "b.txt", "tokens": "many", "pages": True, "mode": "sideways",
                                "passages": float("nan")})
    assert (odd.tokens, odd.pages, odd.mode, odd.passages) == (0, None, "whole", 0)
    assert attachments_from_meta({"attachments": [{"name": "c.md"}, 5]}) == [Attachment("c.md")]


def test_a_reply_that_cites_nothing_lists_its_first_sources(qtbot):
    sources = [Source(n, f"/docs/report-{n}.pdf", f"passage {n}", page=n) for n in range(1, 9)]
    row = SourcesRow(sources, cited=False)
    qtbot.addWidget(row)
    assert row.labels() == [f"[{n}] report-{n}.pdf, page {n}" for n in range(1, 6)]
    assert "3 more" in row.label.text()
    popup = row.show_source(4)
    assert popup.passage.toPlainText() == "passage 4" and not popup.open_button.isEnabled()   # the file is gone
    assert SourcesRow(sources[:7], cited=True).labels()[-1] == "[7] report-7.pdf, page 7"


def test_the_index_is_brought_up_to_date_at_start_and_can_be_paused(qtbot, window_maker, tmp_path):
    folder = knowledge_folder(tmp_path)
    window = window_maker(wait_model=False)
    index_folder(qtbot, window, folder)
    window.close()
    (folder / "tides.md").write_text("Spring tides at Kelby reach 6.2 metres in March.\n")
    again = window_maker(wait_model=False)
    qtbot.waitUntil(lambda: again.documents.last_summary is not None, timeout=TIMEOUT_MS)   # at start, by itself
    summary = again.documents.last_summary
    assert (summary.indexed, summary.unchanged) == (1, 3)   # only the new file was read (the damaged one is known)
    hits = again.documents._open_index().search("spring tides Kelby")
    assert hits and hits[0].path.endswith("tides.md")
    page = again.documents.open_page()
    assert [name for name, _reason in page.failures()] == ["damaged.pdf"]
    again.documents.start_indexing()
    page.pause_button.setChecked(True)
    assert again.documents.job.paused or again.documents.job.finished
    page.pause_button.setChecked(False)
    assert not again.documents.job.paused
    again.documents.job.wait(10)


def test_an_edited_question_keeps_its_files_even_when_they_moved(qtbot, window_maker, tmp_path):
    window = window_maker()
    notes = tmp_path / "notes.md"
    notes.write_text(f"# Harbour notes\n\nline one\n\n{FACT}\n")
    report = write_pdf(tmp_path / "report.pdf", [["Page one text.", "9"], ["42"], [FACT]])
    attach(qtbot, window, notes, report)
    user, _ = send(qtbot, window, "Where does the cat sleep?")
    saved = user.meta.attachments
    notes.unlink()
    report.unlink()
    window.edit_and_resend(user.id, "What is the cat called?")
    qtbot.waitUntil(lambda: not window.documents.preparing and not window.replies.busy, timeout=TIMEOUT_MS)
    edited = window.current.active_path()[-2]
    assert edited.id != user.id and edited.content == "What is the cat called?"
    assert [a.text for a in edited.meta.attachments] == [a.text for a in saved]   # read back exactly
    prompt = window.sent[-1][-1].content
    assert prompt.count(FACT) == 2 and "[page 2]\n42" in prompt and prompt.endswith("What is the cat called?")

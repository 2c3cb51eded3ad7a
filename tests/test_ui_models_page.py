"""The Models page (pytest-qt): cards, downloads with progress / pause / resume after a restart,
Load, Delete with confirmation, Add a .gguf file, Download from URL, and errors shown."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from model_server import FileServer
from tiny_gguf import write_tiny_model

from chatgui.models.catalog import get_entry, Source
from chatgui.models.fit import FITS, NO_FIT, Memory
from chatgui.models.manager import DownloadManager
from chatgui.ui.models import DownloadController, ModelsPage


@pytest.fixture(scope="module")
def gguf_bytes(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("g") / "tiny.gguf").read_bytes()


@pytest.fixture
def server(gguf_bytes):
    s = FileServer(gguf_bytes, delay_per_block=0.002, block=2048)
    yield s
    s.close()


def tiny_entry(url: str, data: bytes, sha256: str | None = None):
    base = get_entry("qwen2.5-coder-1.5b")       # real catalog fields; only the file is the tiny one
    return replace(base, id="tiny", name="Tiny Test Model", file="tiny-test.gguf", size=len(data),
                   sha256=sha256 or hashlib.sha256(data).hexdigest(), sources=(Source("url", url=url),))


@pytest.fixture
def make_page(qtbot, tmp_path):
    pages = []

    def make(entries, memory=Memory(8 << 30, 16 << 30, "RAM")):
        loaded = []
        controller = DownloadController(DownloadManager(tmp_path / "models"))
        page = ModelsPage(entries, controller, loaded.append, memory=memory)
        qtbot.addWidget(page)
        page.resize(900, 700)
        page.show()
        pages.append(page)
        return page, loaded
    (tmp_path / "models").mkdir()
    yield make
    for p in pages:                      # let threads finish before the next test's folders go
        for key in list(p.specs):
            p.downloads.manager.pause(key)
            p.downloads.manager.wait(key, 10)


def test_cards_show_size_licence_good_at_and_fit(make_page):
    page, _ = make_page([get_entry("qwen2.5-coder-1.5b"), get_entry("gemma3-270m")],
                        memory=Memory(8 << 30, 16 << 30, "RAM"))
    card = page.cards["qwen2.5-coder-1.5b"]
    facts = card.findChild(type(card.status), "cardFacts").text()
    assert "1.12 GB" in facts and "Apache-2.0" in facts and "Q4_K_M" in facts
    assert "code" in card.findChild(type(card.status), "cardGoodAt").text()
    assert card.fit_label.text() == FITS
    assert "not chat" in page.cards["gemma3-270m"].findChild(type(card.status), "cardFacts").text()
    small, _ = make_page([get_entry("qwen2.5-coder-1.5b")], memory=Memory(1 << 30, 1 << 30, "RAM"))
    assert small.cards["qwen2.5-coder-1.5b"].fit_label.text() == NO_FIT
    assert card.download_button.isVisible() and not card.load_button.isVisible()


def test_a_moe_card_says_total_and_active_and_estimates_speed_from_active_bytes(make_page):
    from chatgui.models.fit import tokens_per_second
    moe, dense = get_entry("qwen3-30b-a3b"), get_entry("qwen3-4b")
    page, _ = make_page([moe, dense], memory=Memory(8 << 30, 16 << 30, "RAM"))
    facts = {e.id: page.cards[e.id].findChild(type(page.cards[e.id].status), "cardFacts") for e in (moe, dense)}
    assert "30.5B MoE, 3.3B active" in facts[moe.id].text()
    assert "about 18.56 GB" in facts[moe.id].text()             # unpinned: the size is the catalog's estimate
    assert f"~{tokens_per_second(moe):.0f} tok/s" in facts[moe.id].text()
    assert "4.0B parameters" in facts[dense.id].text() and "MoE" not in facts[dense.id].text()
    assert "GB/s" in facts[moe.id].toolTip()
    assert page.cards[moe.id].fit_label.text() == NO_FIT         # all 30B of experts must be in memory (~20 GB)


def test_download_shows_progress_then_load_and_delete(qtbot, make_page, server, gguf_bytes, tmp_path):
    page, loaded = make_page([tiny_entry(server.url, gguf_bytes)])
    card = page.cards["tiny"]
    texts = []
    page.downloads.progress.connect(lambda key, p: texts.append(card.row.label.text()))
    qtbot.mouseClick(card.download_button, qtbot_left())
    qtbot.waitUntil(lambda: card.load_button.isVisible(), timeout=20_000)
    assert any("MB/s" in t and "%" in t and "left" in t for t in texts), texts
    assert "Installed" in card.status.text()
    qtbot.mouseClick(card.load_button, qtbot_left())
    assert loaded == [str(tmp_path / "models" / "tiny-test.gguf")]
    page.confirm = lambda title, text, primary: False
    qtbot.mouseClick(card.delete_button, qtbot_left())
    assert (tmp_path / "models" / "tiny-test.gguf").exists()
    asked = []
    page.confirm = lambda title, text, primary: asked.append(text) or True
    qtbot.mouseClick(card.delete_button, qtbot_left())
    assert asked and not (tmp_path / "models" / "tiny-test.gguf").exists()
    assert card.download_button.isVisible()


def test_pause_then_resume_after_a_restart(qtbot, make_page, server, gguf_bytes, tmp_path):
    entry = tiny_entry(server.url, gguf_bytes)
    page, _ = make_page([entry])
    card = page.cards["tiny"]
    card.download_button.click()
    qtbot.waitUntil(lambda: card.row.bar.value() > 100, timeout=20_000)
    with qtbot.waitSignal(page.downloads.paused, timeout=10_000):
        card.row.pause_button.click()
    assert "Paused at" in card.row.label.text() and card.row.resume_button.isVisible()
    # A new page and manager, as after the app restarts: the partial download is found on disk.
    again, _ = make_page([entry])
    card2 = again.cards["tiny"]
    assert card2.row.isVisible() and card2.row.resume_button.isVisible() and "Paused at" in card2.row.label.text()
    before = len(server.requests)
    card2.row.resume_button.click()
    qtbot.waitUntil(lambda: card2.load_button.isVisible(), timeout=20_000)
    assert server.requests[before]["range"] not in (None, "bytes=0-")
    assert (tmp_path / "models" / "tiny-test.gguf").read_bytes() == gguf_bytes


def test_cancel_removes_the_partial(qtbot, make_page, server, gguf_bytes, tmp_path):
    page, _ = make_page([tiny_entry(server.url, gguf_bytes)])
    card = page.cards["tiny"]
    card.download_button.click()
    qtbot.waitUntil(lambda: card.row.bar.value() > 50, timeout=20_000)
    page.ask_cancel = lambda name, done: "discard"      # "Delete the downloaded part"
    with qtbot.waitSignal(page.downloads.cancelled, timeout=10_000):
        card.row.cancel_button.click()
    assert card.download_button.isVisible() and not card.row.isVisible()
    assert not list((tmp_path / "models" / ".partial").glob("tiny-test.gguf.part"))


def test_a_hash_mismatch_is_shown_with_its_source(qtbot, make_page, server, gguf_bytes):
    page, _ = make_page([tiny_entry(server.url, gguf_bytes, sha256="f" * 64)])
    with qtbot.waitSignal(page.downloads.failed, timeout=20_000):
        page.cards["tiny"].download_button.click()
    assert server.url in page.message.text() and page.message.isVisible()
    assert page.cards["tiny"].download_button.isVisible()


def test_add_a_gguf_file_as_a_copy_then_load_it(qtbot, make_page, tmp_path):
    page, loaded = make_page([])
    src = write_tiny_model(tmp_path / "mine.Q8_0.gguf")
    page.ask_gguf_file = lambda: str(src)
    page.ask_copy = lambda path: True
    with qtbot.waitSignal(page.downloads.finished, timeout=10_000):
        page.add_button.click()
    rows = [page.others_box.itemAt(i).widget() for i in range(page.others_box.count())]
    assert len(rows) == 1 and "mine (Q8_0)" in rows[0].label.text()
    rows[0].load_button.click()
    assert loaded == [str(tmp_path / "models" / "mine.Q8_0.gguf")]


def test_download_from_url(qtbot, make_page, server, gguf_bytes, tmp_path):
    page, _ = make_page([])
    page.ask_url = lambda: server.url
    with qtbot.waitSignal(page.downloads.finished, timeout=20_000):
        page.url_button.click()
    assert (tmp_path / "models" / "tiny.gguf").read_bytes() == gguf_bytes
    qtbot.waitUntil(lambda: page.others_box.count() == 1)
    page.ask_url = lambda: "file:///etc/passwd"
    page.url_button.click()
    assert "http" in page.message.text()


def qtbot_left():
    from PySide6.QtCore import Qt
    return Qt.MouseButton.LeftButton


# -- issue 30: plain words, a question before bytes are thrown away, steady cards, "in use", Chinese --
def test_a_failed_url_download_is_said_in_plain_words(qtbot, make_page):
    page, _ = make_page([])
    page.ask_url = lambda: "http://127.0.0.1:9/model.gguf"      # nothing listens there
    with qtbot.waitSignal(page.downloads.failed, timeout=20_000):
        page.url_button.click()
    text = page.message.text()
    assert "Errno" not in text and "refused" not in text
    assert "Could not reach 127.0.0.1" in text and "check the address or your connection" in text
    assert "Connection refused" in page.message.toolTip()       # the technical detail stays at hand


def test_cancel_asks_before_throwing_away_the_downloaded_part(qtbot, make_page, server, gguf_bytes, tmp_path):
    page, _ = make_page([tiny_entry(server.url, gguf_bytes)])
    card = page.cards["tiny"]
    asked = []
    page.ask_cancel = lambda name, done: asked.append((name, done)) or None   # "Keep downloading"
    card.download_button.click()
    qtbot.waitUntil(lambda: card.row.bar.value() > 50, timeout=20_000)
    card.row.cancel_button.click()
    assert asked and asked[0][0] == "Tiny Test Model" and asked[0][1] > 0
    assert page.downloads.is_running("tiny")                                   # it goes on
    page.ask_cancel = lambda name, done: "pause"                               # "Pause instead"
    with qtbot.waitSignal(page.downloads.paused, timeout=10_000):
        card.row.cancel_button.click()
    assert list((tmp_path / "models" / ".partial").glob("tiny-test.gguf.part"))   # the bytes are kept
    assert card.row.resume_button.isVisible()


def test_focus_goes_to_resume_after_pause(qtbot, make_page, server, gguf_bytes):
    from PySide6.QtWidgets import QApplication

    page, _ = make_page([tiny_entry(server.url, gguf_bytes)])
    page.activateWindow()
    card = page.cards["tiny"]
    card.download_button.click()
    qtbot.waitUntil(lambda: card.row.bar.value() > 50, timeout=20_000)
    card.row.pause_button.setFocus()
    qtbot.waitUntil(lambda: card.row.pause_button.hasFocus(), timeout=2000)
    with qtbot.waitSignal(page.downloads.paused, timeout=10_000):
        qtbot.keyClick(card.row.pause_button, " ")                  # (the space bar presses a button)
    assert QApplication.focusWidget() is card.row.resume_button, QApplication.focusWidget()


def test_a_status_line_does_not_move_the_cards(make_page):
    page, _ = make_page([get_entry("qwen2.5-coder-1.5b"), get_entry("gemma3-270m")])
    card = page.cards["gemma3-270m"]
    before = card.mapTo(page, card.rect().topLeft())
    page.say("Qwen2.5 Coder 1.5B Instruct is ready.")
    page.layout().activate()
    assert card.mapTo(page, card.rect().topLeft()) == before
    page.say("")
    page.layout().activate()
    assert card.mapTo(page, card.rect().topLeft()) == before


def test_the_model_in_use_has_a_badge_and_no_load_button(make_page, gguf_bytes, tmp_path):
    entry = tiny_entry("http://127.0.0.1:9/unused", gguf_bytes)
    (tmp_path / "models" / entry.file).write_bytes(gguf_bytes)
    (tmp_path / "models" / "other.gguf").write_bytes(gguf_bytes)
    page, _ = make_page([entry])
    card = page.cards["tiny"]
    assert card.load_button.isVisible() and not card.in_use_label.isVisible()
    page.set_in_use(str(tmp_path / "models" / entry.file))
    assert card.in_use_label.isVisible() and card.in_use_label.text() == "In use"
    assert not card.load_button.isVisible()
    def other_row():
        rows = [page.others_box.itemAt(i).widget() for i in range(page.others_box.count())]
        return next(r for r in rows if r.path.name == "other.gguf")
    row = other_row()                                      # (a new row: not drawn yet, so isHidden)
    assert not row.load_button.isHidden() and row.in_use_label.isHidden()
    page.set_in_use(str(tmp_path / "models" / "other.gguf"))
    row = other_row()
    assert not row.in_use_label.isHidden() and row.load_button.isHidden()
    assert card.load_button.isVisible() and not card.in_use_label.isVisible()

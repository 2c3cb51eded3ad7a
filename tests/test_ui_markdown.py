"""Rendering model output: Markdown, inert HTML, no resource loads, bounded streaming cost."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QTextCursor

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.session import Message
from chatgui.ui.chat.markdown_body import MarkdownBody
from chatgui.ui.chat.markdown_split import SegmentSplitter, code_blocks
from chatgui.ui.chat.message_widget import MessageWidget
from chatgui.ui.common.safe_text import SafeDocument, SafeTextBrowser, is_code_block, render_markdown

TABLE_AND_CODE = """# Results

| name | score |
|------|-------|
| ada  | 3     |

```python
print("<b>hi</b>")
```
"""

HOSTILE = """Look: <img src="http://example.com/track.png"> <script>alert(1)</script>

![secret](file:///etc/passwd) and ![remote](https://example.com/x.png)

<iframe src="http://example.com"></iframe>

[local file](file:///etc/passwd) and [web](https://example.com/page)
"""


def assistant(text: str) -> Message:
    return Message("m1", "assistant", text, 0.0)


@pytest.fixture
def refused():
    SafeDocument.refused_urls.clear()
    yield SafeDocument.refused_urls
    SafeDocument.refused_urls.clear()


def test_table_heading_and_code_block(qtbot):
    body = MarkdownBody(TABLE_AND_CODE)
    qtbot.addWidget(body)
    doc = body.browsers()[0].document()
    cursor = QTextCursor(doc)
    tables = []
    block = doc.begin()
    while block.isValid():
        cursor.setPosition(block.position())
        if cursor.currentTable() is not None and cursor.currentTable() not in tables:
            tables.append(cursor.currentTable())
        block = block.next()
    assert len(tables) == 1 and (tables[0].rows(), tables[0].columns()) == (2, 2)
    assert doc.begin().blockFormat().headingLevel() == 1
    code = [b for b in _blocks(doc) if is_code_block(b)]
    assert [b.text() for b in code] == ['print("<b>hi</b>")']
    fragment = code[0].begin().fragment()
    assert "mono" in " ".join(fragment.charFormat().fontFamilies() or []).lower()


def test_copy_code_action(qtbot):
    widget = MessageWidget(assistant("Two blocks:\n\n```\na = 1\n```\n\n```sh\nls -l\n```\n"))
    qtbot.addWidget(widget)
    assert not widget.copy_code_button.isHidden()
    actions = widget.copy_code_button.menu().actions()
    assert len(actions) == 2
    actions[1].trigger()
    from PySide6.QtGui import QGuiApplication
    assert QGuiApplication.clipboard().text() == "ls -l"
    single = MessageWidget(assistant("```\nx = 2\n```"))
    qtbot.addWidget(single)
    single.copy_code_button.click()
    assert QGuiApplication.clipboard().text() == "x = 2"


def test_html_in_model_output_is_inert(qtbot, refused):
    widget = MessageWidget(assistant(HOSTILE))
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.grab()   # lay out and paint everything
    text = widget.shown_text()
    assert '<img src="http://example.com/track.png">' in text
    assert "<script>alert(1)</script>" in text and "<iframe" in text
    assert "[image: file:///etc/passwd]" in text and "[image: https://example.com/x.png]" in text
    assert refused == []   # no resource was even asked for, local or remote
    html = widget.body.browsers()[0].toHtml()
    assert "<img" not in html and "<script" not in html


def test_resource_requests_are_refused(qtbot, refused):
    browser = SafeTextBrowser()
    qtbot.addWidget(browser)
    doc = SafeDocument()
    doc.setHtml('<img src="file:///etc/passwd"><img src="http://example.com/a.png">')   # bypasses rendering
    browser.set_document(doc)
    browser.show()
    browser.grab()
    assert refused and all(u in ("file:///etc/passwd", "http://example.com/a.png") for u in refused)
    assert browser.loadResource(0, QUrl("http://example.com/b.png")) is None


def test_links_open_only_http_on_click(qtbot, monkeypatch):
    opened, blocked = [], []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toString())))
    browser = SafeTextBrowser()
    qtbot.addWidget(browser)
    browser.link_refused.connect(blocked.append)
    browser.set_document(render_markdown(HOSTILE))
    assert opened == []   # nothing opens by itself
    browser.anchorClicked.emit(QUrl("file:///etc/passwd"))
    browser.anchorClicked.emit(QUrl("javascript:alert(1)"))
    browser.anchorClicked.emit(QUrl("https://example.com/page"))
    assert opened == ["https://example.com/page"]
    assert blocked == ["file:///etc/passwd", "javascript:alert(1)"]
    assert browser.source().isEmpty()   # the view never navigated


def test_user_text_is_shown_literally(qtbot):
    widget = MessageWidget(Message("u", "user", "**not bold** <b>tag</b>", 0.0))
    qtbot.addWidget(widget)
    assert widget.shown_text() == "**not bold** <b>tag</b>"


def test_splitter_reopens_code_blocks():
    code = "\n".join(f"line {i} = {i} * 2" for i in range(400))
    text = f"Intro paragraph.\n\n```python\n{code}\n```\n\nAfter.\n"
    splitter = SegmentSplitter(min_chars=500)
    segments = splitter.take_settled(text)
    assert len(segments) > 3
    for segment in segments[1:-1]:
        if segment.startswith("```python"):
            assert segment.rstrip().endswith("```")
    # Together the segments and the tail hold the same code lines, each exactly once.
    joined = segments + [splitter.tail(text)]
    lines = [line for seg in joined for line in code_blocks(seg) for line in line.split("\n") if line]
    assert lines == code.split("\n")


def test_splitter_cuts_only_at_paragraph_breaks():
    text = "".join(f"Paragraph {i} " + "words " * 60 + "\n\n" for i in range(30))
    splitter = SegmentSplitter(min_chars=1000)
    segments = splitter.take_settled(text)
    assert segments and all(s.endswith("\n\n") for s in segments)
    assert "".join(segments) + splitter.tail(text) == text


def test_streaming_cost_stays_flat_for_long_replies(qtbot):
    """A 10,000-token reply: the last updates must cost about what the first ones did."""
    paragraph = "Some *markdown* text with `code` and a [link](https://example.com). " * 6
    pieces = []
    for i in range(120):
        pieces.append(f"## Part {i}\n\n{paragraph}\n\n- item one\n- item two\n\n")
        if i % 10 == 0:
            pieces.append("```python\n" + "x = 1\n" * 15 + "```\n\n")
    full = "".join(pieces)
    assert len(full) > 40_000   # about 10,000 tokens
    body = MarkdownBody("")
    qtbot.addWidget(body)
    body.resize(700, 400)
    body.begin_stream()
    costs, step = [], 200
    for end in range(step, len(full) + step, step):
        started = time.perf_counter()
        body.stream_text(full[:end])
        costs.append(time.perf_counter() - started)
    early, late = sorted(costs[5:55])[25], sorted(costs[-50:])[25]   # medians
    assert late < 3 * early + 0.003, (early, late)
    assert len(body.browsers()) < 60
    body.end_stream(full)
    assert len(body.browsers()) == 1
    assert "Part 119" in body.plain_text()


def _blocks(doc):
    block = doc.begin()
    while block.isValid():
        yield block
        block = block.next()

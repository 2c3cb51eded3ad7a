"""Text extraction per file type, and every kind of bad input getting a plain reason (issue 32)."""
from __future__ import annotations

import os
import sys
import time
import zipfile

import pytest

from chatgui.documents import extract, kind_of
from pdf_maker import pdf_bytes, write_encrypted_pdf, write_pdf

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def write_docx(path, paragraphs: list[str]):
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{p}</w:t></w:r></w:p>" for p in paragraphs)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", f'<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>')
    return path


# -- each file type -------------------------------------------------------------------------

def test_text_lines_keep_their_numbers(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("first line\n\n  \nfourth line\n")
    result = extract(f)
    assert result.ok and result.kind == "text"
    assert [(p.text, p.line) for p in result.passages] == [("first line", 1), ("fourth line", 4)]


@pytest.mark.parametrize("data, expected", [
    ("café au lait".encode("utf-8"), "café au lait"),
    (b"\xef\xbb\xbfwith a BOM", "with a BOM"),
    ("utf-16 text".encode("utf-16"), "utf-16 text"),
    ("caf\xe9 in Windows-1252".encode("cp1252"), "café in Windows-1252"),
])
def test_text_encodings(tmp_path, data, expected):
    f = tmp_path / "enc.txt"
    f.write_bytes(data)
    result = extract(f)
    assert result.ok, result.error
    assert result.text == expected


def test_markdown_and_code(tmp_path):
    md = tmp_path / "readme.md"
    md.write_text("# Title\n\nBody text.\n")
    code = tmp_path / "tool.py"
    code.write_text("def add(a, b):\n    return a + b\n")
    assert extract(md).kind == "markdown" and extract(md).passages[1].line == 3
    result = extract(code)
    assert result.kind == "code" and result.passages[1].text == "    return a + b"  # indentation kept


def test_csv_rows_name_their_columns(tmp_path):
    f = tmp_path / "people.csv"
    f.write_text('name,city\nAnn,"Paris, France"\n\nBob,Oslo\n')
    result = extract(f)
    assert result.ok
    assert [(p.text, p.line) for p in result.passages] == [
        ("name, city", 1), ("name: Ann; city: Paris, France", 2), ("name: Bob; city: Oslo", 4)]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert extract(tsv).passages[1].text == "a: 1; b: 2"


def test_json_valid_and_not(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{\n  "model": "smollm",\n  "size": 135\n}\n')
    result = extract(good)
    assert result.ok and result.passages[1].text.strip() == '"model": "smollm",'
    bad = tmp_path / "bad.json"
    bad.write_text('{"unclosed": ')
    result = extract(bad)
    assert not result.ok and "not valid JSON" in result.error


def test_html_to_text(tmp_path):
    f = tmp_path / "page.html"
    f.write_text("<html><head><title>My page</title><style>p{color:red}</style>"
                 "<script>var secret = 1;</script></head><body><h1>Heading</h1>"
                 "<p>Fish &amp; chips &lt;3</p><ul><li>one</li><li>two</li></ul></body></html>")
    result = extract(f)
    assert result.ok
    assert [p.text for p in result.passages] == ["My page", "Heading", "Fish & chips <3", "one", "two"]
    assert "secret" not in result.text and "color" not in result.text


def test_pdf_pages(tmp_path):
    f = write_pdf(tmp_path / "doc.pdf", [["Page one says hello."], ["Page two (with parentheses)."], ["Third."]])
    result = extract(f)
    assert result.ok and result.kind == "pdf" and result.pages == 3
    assert [(p.page, p.text) for p in result.passages] == [
        (1, "Page one says hello."), (2, "Page two (with parentheses)."), (3, "Third.")]


def test_docx_paragraphs(tmp_path):
    f = write_docx(tmp_path / "letter.docx", ["Dear reader,", "", "The meeting is on Friday."])
    result = extract(f)
    assert result.ok and result.kind == "docx"
    assert [(p.text, p.line) for p in result.passages] == [("Dear reader,", 1), ("The meeting is on Friday.", 3)]


def test_kinds_by_name():
    assert kind_of("a.PDF") == "pdf" and kind_of("Makefile") == "code" and kind_of("x.rs") == "code"
    assert kind_of("photo.png") == ""


# -- bad input: a plain reason, never an exception ----------------------------------------------

def test_unknown_kind(tmp_path):
    f = tmp_path / "photo.png"
    f.write_bytes(b"\x89PNG")
    assert "does not read .png" in extract(f).error


def test_empty_file(tmp_path):
    f = tmp_path / "empty.txt"
    f.touch()
    assert extract(f).error == "the file is empty"


def test_blank_text_file(tmp_path):
    f = tmp_path / "blank.md"
    f.write_text("\n   \n\t\n")
    assert extract(f).error == "no text found in it"


def test_binary_named_txt(tmp_path):
    f = tmp_path / "not-really.txt"
    f.write_bytes(bytes(range(256)) * 40)
    result = extract(f)
    assert not result.ok and "binary" in result.error and result.passages == []
    f.write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 100)  # control bytes, no NUL
    assert "binary" in extract(f).error


def test_huge_file_refused_by_size_without_reading(tmp_path, monkeypatch):
    f = tmp_path / "huge.txt"
    with open(f, "wb") as out:
        out.truncate(2 * 1024 ** 3)  # a sparse 2 GB file: no disk used
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    start = time.perf_counter()
    result = extract(f)
    assert time.perf_counter() - start < 1
    assert result.error.startswith("too large to read (2.0 GB; the limit")
    assert str(f) not in map(str, opened)


def test_huge_pdf_refused(tmp_path):
    f = tmp_path / "huge.pdf"
    with open(f, "wb") as out:
        out.truncate(2 * 1024 ** 3)
    assert extract(f).error.startswith("too large to read (2.0 GB")


def test_encrypted_pdf(tmp_path):
    f = write_encrypted_pdf(tmp_path / "locked.pdf", [["secret text"]])
    result = extract(f)
    assert result.error == "this PDF is protected by a password" and result.passages == []


def test_encrypted_pdf_without_user_password_opens(tmp_path):
    """Owner-password-only PDFs (printing restricted) open without asking, so they are read."""
    f = write_encrypted_pdf(tmp_path / "restricted.pdf", [["readable text"]], user_password="")
    result = extract(f)
    assert result.ok and result.text == "readable text"


@pytest.mark.parametrize("data", [
    b"%PDF-1.4\n" + bytes(range(256)) * 20,
    b"this is not a pdf at all",
    b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
])
def test_broken_pdf(tmp_path, data):
    f = tmp_path / "broken.pdf"
    f.write_bytes(data)
    result = extract(f)
    assert not result.ok and result.error.startswith("this PDF is damaged or not a PDF"), result.error


def test_truncated_pdf_never_raises(tmp_path):
    whole = pdf_bytes([[f"page {i} words"] for i in range(10)])
    for cut in (len(whole) // 3, len(whole) // 2, len(whole) - 40):
        f = tmp_path / f"cut{cut}.pdf"
        f.write_bytes(whole[:cut])
        result = extract(f)  # pypdf may recover some pages: either text or a reason, never an exception
        assert result.ok or result.error


def test_pdf_without_text_layer(tmp_path):
    f = write_pdf(tmp_path / "scan.pdf", [[], []])
    assert extract(f).error == "this PDF has no text layer (a scan or images only)"


def test_broken_docx(tmp_path):
    f = tmp_path / "broken.docx"
    f.write_bytes(b"PK\x03\x04 truncated")
    assert extract(f).error == "this DOCX is damaged or not a DOCX (not a zip file)"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("something.txt", "hi")
    assert "not a Word document" in extract(f).error
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("word/document.xml", "<w:document><unclosed")
    assert "its XML does not parse" in extract(f).error


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loop_file(tmp_path):
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    assert extract(loop).error == "a link that leads back to itself (a symlink loop)"
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "missing.md")
    assert "no longer exists" in extract(dangling).error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_not_read(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert extract(fifo).error == "not a regular file"  # a read would block forever


def test_unreadable_file(tmp_path, monkeypatch):
    f = tmp_path / "private.txt"
    f.write_text("secret")
    real_open = open

    def refuse(path, *a, **k):
        if os.fspath(path) == str(f):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", refuse)
    assert extract(f).error == "chatgui is not allowed to read it (permission denied)"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_by_mode(tmp_path):
    f = tmp_path / "private.txt"
    f.write_text("secret")
    f.chmod(0)
    try:
        assert extract(f).error == "chatgui is not allowed to read it (permission denied)"
    finally:
        f.chmod(0o600)


def test_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "dir.txt").mkdir()
    assert extract(tmp_path / "dir.txt").error == "a folder, not a file"


def test_documents_import_neither_qt_nor_torch_nor_other_layers():
    import subprocess
    from pathlib import Path

    code = ("import sys, chatgui.documents; bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6')"
            " or m.startswith(('chatgui.store', 'chatgui.engine', 'chatgui.ui', 'chatgui.server'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_index_lives_in_the_data_folder():
    from chatgui.common.paths import data_dir
    from chatgui.documents import default_index_path

    assert default_index_path() == data_dir() / "knowledge.sqlite3"

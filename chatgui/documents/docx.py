"""DOCX text read from the zip's word/document.xml with the standard library.

No python-docx: it would bring lxml (a large native package) for what is one XML part read
in order; the body's paragraphs (w:p, tables' cells included) with their runs' text (w:t),
tabs and breaks are all a reader needs. A paragraph is one passage; its number stands in for
the line. Sizes are checked before inflating, so a zip bomb gets a reason, not our memory.
"""
from __future__ import annotations

import zipfile
import xml.etree.ElementTree as ET

from .types import Passage

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MAX_XML_BYTES = 200 * 1024 * 1024


class DocxUnreadable(Exception):
    """The message is the plain reason shown for the file."""


def docx_passages(path: str) -> list[Passage]:
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo("word/document.xml")
            except KeyError:
                raise DocxUnreadable("this is a zip file but not a Word document (no word/document.xml)") from None
            if info.file_size > MAX_XML_BYTES:
                raise DocxUnreadable(f"this document's text part is too large ({info.file_size // 2**20} MB unpacked)")
            xml = archive.read(info)
    except zipfile.BadZipFile:
        raise DocxUnreadable("this DOCX is damaged or not a DOCX (not a zip file)") from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
        raise DocxUnreadable(f"this DOCX is damaged ({exc})") from None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DocxUnreadable(f"this DOCX is damaged (its XML does not parse: {exc})") from None
    passages = []
    for number, paragraph in enumerate(root.iter(f"{_W}p"), start=1):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        text = "".join(parts)
        if text.strip():
            passages.append(Passage(text, line=number))
    return passages

"""Plain text, Markdown, source code, CSV and JSON: decoded to text, one passage per line.

A file named .txt may hold anything, so the bytes decide: a NUL byte (without a UTF-16 byte
order mark) or many control characters mean a binary file, which gets a reason, not garbage
passages. UTF-8 (with or without BOM) and UTF-16 with a BOM are read as such; other bytes that
are not UTF-8 are read as Windows-1252, the usual encoding of old Western text files.
"""
from __future__ import annotations

import codecs
import csv
import io
import json

from .types import Passage

# Control characters other than tab, newline, carriage return and form feed
_CONTROL = set(range(0, 9)) | {11} | set(range(14, 32)) | {127}


class NotText(Exception):
    """The bytes are not a text file; the message says why in plain words."""


def decode_text(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    head = data[:65536]
    if b"\x00" in head:
        raise NotText("this looks like a binary file, not text")
    controls = sum(1 for b in head if b in _CONTROL)
    if head and controls / len(head) > 0.05:
        raise NotText("this looks like a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def line_passages(text: str) -> list[Passage]:
    """One passage per non-blank line, with its 1-based line number."""
    return [Passage(line, line=number)
            for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


def check_json(text: str) -> None:
    """JSON is indexed as its text (keys and values read as written), but a file that does
    not parse is probably not what the user thinks it is: say so rather than index noise."""
    try:
        json.loads(text)
    except ValueError as exc:
        raise NotText(f"this is not valid JSON ({exc.__class__.__name__}: {exc})") from None


def csv_passages(text: str, delimiter: str = ",") -> list[Passage]:
    """A CSV row becomes 'header: value; header: value' so that a retrieved row still says
    which column each value is in; the line number is the row's first line in the file."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    passages: list[Passage] = []
    header: list[str] | None = None
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                passages.append(Passage(", ".join(header), line=line))
                continue
            cells = [f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: {cell.strip()}"
                     for i, cell in enumerate(row) if cell.strip()]
            passages.append(Passage("; ".join(cells), line=line))
    except csv.Error:
        return line_passages(text)  # not regular CSV after all: its lines are still worth reading
    return passages

"""A tiny PDF writer for tests and benchmarks: pages of plain text lines in Helvetica.

chatgui reads PDFs with pypdf but never writes them, so rather than adding a PDF-making
dependency (reportlab) this writes the few objects a text page needs by hand: a catalog, a
page tree, one standard font and a content stream per page, with a correct xref table, so
that pypdf (and any viewer) reads it without repairing anything.
"""
from __future__ import annotations

from pathlib import Path


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _page_stream(lines: list[str]) -> bytes:
    parts = [b"BT /F1 10 Tf 12 TL 50 800 Td"]
    for line in lines:
        parts.append(b"(" + _escape(line) + b") Tj T*")
    parts.append(b"ET")
    return b"\n".join(parts)


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A PDF whose page i shows the text lines pages[i]."""
    objects: list[bytes] = []  # object number n is objects[n - 1]
    n_pages = len(pages)
    first_page = 4  # 1 catalog, 2 page tree, 3 font, then (page, content) pairs
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, lines in enumerate(pages):
        content_no = first_page + 2 * i + 1
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_no} 0 R >>".encode())
        stream = _page_stream(lines)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def write_pdf(path: Path, pages: list[list[str]]) -> Path:
    path = Path(path)
    path.write_bytes(pdf_bytes(pages))
    return path


def write_encrypted_pdf(path: Path, pages: list[list[str]], user_password: str = "secret") -> Path:
    """The same PDF, encrypted with RC4 (which pypdf writes without an extra package)."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as f:
        writer.write(f)
    return Path(path)

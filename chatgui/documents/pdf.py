"""PDF text with pypdf, one passage per page with its page number.

Encrypted PDFs: many carry only an owner password (they open without asking), so an empty
password is tried first; a PDF that needs a real password gets that reason. pypdf decrypts
RC4 itself but AES only with the optional 'cryptography' package, which chatgui does not
install: such a file gets a reason that says so. A PDF whose pages have no text layer (a scan)
gets a reason too, rather than being listed as indexed with nothing in it.
"""
from __future__ import annotations

import logging
from typing import Callable

from .types import Passage


class PdfUnreadable(Exception):
    """The message is the plain reason shown for the file."""


def pdf_passages(path: str, cancelled: Callable[[], bool] | None = None) -> tuple[list[Passage], int]:
    """(passages, page count). Raises PdfUnreadable with a plain reason."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    # pypdf logs every oddity it repairs; a damaged PDF is reported once, by our reason
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError:
                raise PdfUnreadable("this PDF is encrypted with AES, which chatgui cannot read yet") from None
            if not opened:
                raise PdfUnreadable("this PDF is protected by a password")
        pages = len(reader.pages)
        passages: list[Passage] = []
        for number, page in enumerate(reader.pages, start=1):
            if cancelled is not None and cancelled():
                break
            text = page.extract_text() or ""
            if text.strip():
                passages.append(Passage(text.strip("\n"), page=number, line=1))
    except PdfUnreadable:
        raise
    except FileNotDecryptedError:
        raise PdfUnreadable("this PDF is protected by a password") from None
    except DependencyError:
        raise PdfUnreadable("this PDF is encrypted with AES, which chatgui cannot read yet") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError,
            RecursionError, ZeroDivisionError, UnicodeError) as exc:
        # pypdf raises many kinds on damaged files; these are its parser failing on the bytes
        raise PdfUnreadable(f"this PDF is damaged or not a PDF ({_short(exc)})") from None
    if pages and not passages:
        raise PdfUnreadable("this PDF has no text layer (a scan or images only)")
    return passages, pages


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text if len(text) <= 120 else text[:117] + "..."

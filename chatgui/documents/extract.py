"""Read one file into passages, whatever it is: every failure becomes a plain reason on the
Extraction, never an exception (a bad file must not stop an indexer or the app).

Checks before reading: the path is a regular file (a FIFO would block a read forever; a
device or a folder is not a document), it is not empty, and it is under the size limit of its
kind, so a 2 GB file is refused from its size alone and never read into memory.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Callable

from .docx import DocxUnreadable, docx_passages
from .html_text import html_passages
from .pdf import PdfUnreadable, pdf_passages
from .text_files import NotText, check_json, csv_passages, decode_text, line_passages
from .types import Extraction

MB = 1024 * 1024
# Text kinds are read whole into memory; PDFs and DOCX are parsed by page or part.
TEXT_LIMIT = 20 * MB
PDF_LIMIT = 200 * MB
DOCX_LIMIT = 100 * MB

_CODE = {".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".c", ".h", ".cc", ".cpp", ".hpp", ".cxx",
         ".java", ".kt", ".go", ".rs", ".rb", ".php", ".cs", ".swift", ".m", ".scala", ".sh", ".bash",
         ".zsh", ".ps1", ".sql", ".r", ".lua", ".pl", ".hs", ".css", ".scss", ".toml", ".yaml", ".yml",
         ".ini", ".cfg", ".xml", ".tex", ".el", ".clj", ".dart", ".jl", ".vue", ".svelte", ".cmake"}
KINDS: dict[str, str] = {".txt": "text", ".text": "text", ".log": "text", ".rst": "text", ".org": "text",
                         ".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".tsv": "csv",
                         ".json": "json", ".html": "html", ".htm": "html", ".xhtml": "html",
                         ".pdf": "pdf", ".docx": "docx", **{suffix: "code" for suffix in _CODE}}
_NAMES = {"makefile": "code", "dockerfile": "code", "readme": "text", "license": "text"}


def kind_of(path: str | os.PathLike) -> str:
    """The document kind from the file name, or "" for a file chatgui does not read."""
    p = Path(path)
    return KINDS.get(p.suffix.lower()) or _NAMES.get(p.name.lower(), "")


def limit_for(kind: str) -> int:
    return {"pdf": PDF_LIMIT, "docx": DOCX_LIMIT}.get(kind, TEXT_LIMIT)


def size_text(size: int) -> str:
    if size >= 1024 * MB:
        return f"{size / (1024 * MB):.1f} GB"
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"


def os_reason(exc: OSError) -> str:
    """An OSError in plain words (the path is shown beside it, so it is left out)."""
    if exc.errno == errno.ELOOP:
        return "a link that leads back to itself (a symlink loop)"
    if isinstance(exc, PermissionError):
        return "chatgui is not allowed to read it (permission denied)"
    if isinstance(exc, FileNotFoundError):
        return "it no longer exists (or a link points nowhere)"
    return f"it could not be read ({exc.strerror or exc})"


def extract(path: str | os.PathLike, kind: str | None = None,
            cancelled: Callable[[], bool] | None = None) -> Extraction:
    path = os.fspath(path)
    kind = kind or kind_of(path)
    result = Extraction(path=path, kind=kind)
    if not kind:
        result.error = f"chatgui does not read {Path(path).suffix or 'files without an extension'} files"
        return result
    try:
        info = os.stat(path)
    except OSError as exc:
        result.error = os_reason(exc)
        return result
    if not stat.S_ISREG(info.st_mode):
        result.error = "not a regular file" if not stat.S_ISDIR(info.st_mode) else "a folder, not a file"
        return result
    if info.st_size == 0:
        result.error = "the file is empty"
        return result
    if info.st_size > limit_for(kind):
        result.error = f"too large to read ({size_text(info.st_size)}; the limit for this kind is {size_text(limit_for(kind))})"
        return result
    try:
        if kind == "pdf":
            result.passages, result.pages = pdf_passages(path, cancelled)
        elif kind == "docx":
            result.passages = docx_passages(path)
        else:
            with open(path, "rb") as f:
                # read at most the limit + 1, in case the file grew since the stat
                data = f.read(limit_for(kind) + 1)
            if len(data) > limit_for(kind):
                result.error = f"too large to read (over {size_text(limit_for(kind))})"
                return result
            text = decode_text(data)
            if kind == "html":
                result.passages = html_passages(text)
            elif kind == "csv":
                result.passages = csv_passages(text, "\t" if path.lower().endswith(".tsv") else ",")
            else:
                if kind == "json":
                    check_json(text)
                result.passages = line_passages(text)
    except (PdfUnreadable, DocxUnreadable, NotText) as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = os_reason(exc)
    except MemoryError:
        result.error = "not enough memory to read it"
    except Exception as exc:  # noqa: BLE001 - a parser's surprise must not stop an indexer
        result.error = f"it could not be read ({exc.__class__.__name__}: {str(exc)[:120]})"
    if result.error:
        result.passages = []
    elif not result.passages:
        result.error = "no text found in it"
    return result

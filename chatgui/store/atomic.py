"""Crash-safe file writes for the store: chatgui.common.io's, with an OSError turned into a
StoreError that names the file (the target holds either the old content or the new, never a mix)."""
from __future__ import annotations

from pathlib import Path

from chatgui.common import io

from .errors import StoreError


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Raises StoreError (the old file untouched, the temp file removed) on any OSError."""
    try:
        io.atomic_write_bytes(path, data)
    except OSError as err:
        raise StoreError.wrap("Could not save", Path(path), err) from err

"""The app icon, shipped as package data: icon.svg and icon-<N>.png (made by packaging/make_icons.py)."""
from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def icon_path(size: int | None = None) -> Path:
    """The SVG icon, or with a size the smallest PNG at least that big (the largest one beyond)."""
    if size is None:
        return ASSETS_DIR / "icon.svg"
    best = next((n for n in ICON_SIZES if n >= size), ICON_SIZES[-1])
    return ASSETS_DIR / f"icon-{best}.png"


def app_icon():
    """A QIcon holding every PNG size (needs no SVG icon plugin). Call after QApplication exists."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for n in ICON_SIZES:
        icon.addFile(str(icon_path(n)), QSize(n, n))
    return icon

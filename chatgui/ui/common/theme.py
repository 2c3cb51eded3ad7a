"""Looks: only palette roles, so the OS's light or dark scheme shows through unchanged."""
from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

STYLE = """
QFrame#userMessage { background: palette(alternate-base); border: 1px solid palette(midlight); border-radius: 8px; }
QFrame#assistantMessage { background: transparent; }
QWidget#conversationContent { background: palette(base); }
"""

_connected = False


def apply_theme() -> None:
    """Install the style sheet, and again whenever the OS switches between light and dark
    (palette() references are resolved when a style sheet is applied)."""
    global _connected
    app = QApplication.instance()
    if app is None:
        return
    app.setStyleSheet(STYLE)
    if not _connected:
        _connected = True
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: app.setStyleSheet(STYLE))

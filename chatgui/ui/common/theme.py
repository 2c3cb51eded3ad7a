"""Looks: a light and a dark palette (Fusion style, so they look the same on every OS) and a
small style sheet that refers only to palette roles, so it fits both.

theme "system" follows the OS's colour scheme (and its switches while the app runs); "light" and
"dark" force one. The accent is the palette's Highlight.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")

# role: (light, dark)
COLOURS = {
    QPalette.ColorRole.Window: ("#f6f6f7", "#1f2023"),
    QPalette.ColorRole.WindowText: ("#1f2328", "#e6e6e9"),
    QPalette.ColorRole.Base: ("#ffffff", "#26272b"),
    QPalette.ColorRole.AlternateBase: ("#f0f1f4", "#2e3035"),
    QPalette.ColorRole.Text: ("#1f2328", "#e6e6e9"),
    QPalette.ColorRole.PlaceholderText: ("#8b8f98", "#8b8f98"),
    QPalette.ColorRole.Button: ("#ffffff", "#2e3035"),
    QPalette.ColorRole.ButtonText: ("#1f2328", "#e6e6e9"),
    QPalette.ColorRole.Highlight: ("#2563eb", "#3b82f6"),
    QPalette.ColorRole.HighlightedText: ("#ffffff", "#ffffff"),
    QPalette.ColorRole.ToolTipBase: ("#ffffff", "#2e3035"),
    QPalette.ColorRole.ToolTipText: ("#1f2328", "#e6e6e9"),
    QPalette.ColorRole.Link: ("#2563eb", "#60a5fa"),
    QPalette.ColorRole.Light: ("#ffffff", "#3a3c42"),
    QPalette.ColorRole.Midlight: ("#e4e5e9", "#34363b"),
    QPalette.ColorRole.Mid: ("#c9ccd2", "#4a4d54"),
    QPalette.ColorRole.Dark: ("#9a9ea7", "#151618"),
    QPalette.ColorRole.Shadow: ("#6b6f78", "#000000"),
}
DISABLED_TEXT = ("#8b8f98", "#7d818a")

STYLE = """
QFrame#userMessage { background: palette(alternate-base); border: none; border-radius: 14px; }
QFrame#assistantMessage { background: transparent; border: none; }
QWidget#conversationContent { background: palette(base); }
QScrollArea#conversationView { border: none; background: palette(base); }
QFrame#composer { background: palette(base); border: 1px solid palette(mid); border-radius: 16px; }
QFrame#composer QPlainTextEdit { background: transparent; border: none; }
QToolButton#sendButton, QToolButton#stopButton { border: none; border-radius: 15px; background: palette(highlight);
    color: palette(highlighted-text); min-width: 30px; min-height: 30px; font-weight: bold; }
QToolButton#sendButton:disabled { background: palette(mid); }
QToolButton#jumpToLatestButton { border: 1px solid palette(mid); border-radius: 16px; background: palette(base);
    padding: 4px 10px; }
QWidget#inputBar { background: palette(base); }
QListWidget#chatList { border: none; background: palette(window); }
QListWidget#chatList::item { padding: 6px 28px 6px 8px; border-radius: 8px; }
QListWidget#chatList::item:selected { background: palette(midlight); color: palette(text); }
QDockWidget > QWidget { background: palette(window); }
QGroupBox { font-weight: bold; border: none; margin-top: 14px; }
QGroupBox::title { subcontrol-origin: margin; left: 2px; padding: 0 2px; }
QWidget#topBar { background: palette(base); }
QToolButton#modelPill { border: 1px solid palette(midlight); border-radius: 14px; padding: 4px 10px;
    background: palette(window); }
QToolButton#modelPill:hover, QToolButton#modelPill:pressed { background: palette(midlight); }
QToolButton#modelPill::menu-indicator { image: none; width: 0px; }
QToolButton#settingsButton, QToolButton#inspectorButton { border: none; border-radius: 8px; padding: 5px; }
QToolButton#settingsButton:hover, QToolButton#inspectorButton:hover { background: palette(midlight); }
QToolButton#settingsButton:checked, QToolButton#inspectorButton:checked { background: palette(midlight); }
QPushButton#newChatButton { text-align: left; padding: 7px 10px; border: 1px solid palette(midlight);
    border-radius: 8px; background: palette(base); font-weight: bold; }
QPushButton#newChatButton:hover { background: palette(midlight); }
QScrollArea#welcomeCard, QWidget#welcomeBackground { background: palette(base); border: none; }
QFrame#welcomeFrame { background: palette(base); border: 1px solid palette(midlight); border-radius: 16px; }
QFrame#welcomeRecommendation { background: palette(alternate-base); border: none; border-radius: 12px; }
QLabel#welcomeCaption { color: palette(placeholder-text); font-weight: bold; }
QLabel#welcomeError { color: #dc2626; }
QPushButton#welcomeDownloadButton { background: palette(highlight); color: palette(highlighted-text); border: none;
    border-radius: 8px; padding: 7px 16px; font-weight: bold; }
QPushButton#welcomeFileButton, QPushButton#welcomeModelsButton, QPushButton#welcomeServerButton {
    color: palette(link); border: none; padding: 4px 6px; }
QPushButton#welcomeFileButton:hover, QPushButton#welcomeModelsButton:hover, QPushButton#welcomeServerButton:hover {
    text-decoration: underline; }
QMainWindow::separator { width: 1px; height: 1px; background: palette(midlight); }
QMainWindow > QTabBar::tab { padding: 6px 14px; border: none; border-bottom: 2px solid transparent;
    background: palette(window); }
QMainWindow > QTabBar::tab:selected { border-bottom: 2px solid palette(highlight); font-weight: bold; }
QScrollBar:vertical { background: transparent; width: 8px; margin: 0; }
QScrollBar:horizontal { background: transparent; height: 8px; margin: 0; }
QScrollBar::handle:vertical { background: palette(mid); border-radius: 4px; min-height: 28px; margin: 1px; }
QScrollBar::handle:horizontal { background: palette(mid); border-radius: 4px; min-width: 28px; margin: 1px; }
QScrollBar::handle:hover { background: palette(dark); }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; border: none; background: none; }
QScrollBar::add-page, QScrollBar::sub-page { background: none; }
QFrame#codeBlock { background: palette(alternate-base); border: 1px solid palette(midlight); border-radius: 8px; }
"""

_connected = False
_choice = "system"


def is_dark(theme: str) -> bool:
    if theme == "dark":
        return True
    if theme == "light":
        return False
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def palette_for(dark: bool) -> QPalette:
    palette = QPalette()
    index = 1 if dark else 0
    for role, colours in COLOURS.items():
        palette.setColor(role, QColor(colours[index]))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED_TEXT[index]))
    return palette


def apply_theme(theme: str = "system") -> None:
    """Install the palette and the style sheet, and again whenever the OS switches between light
    and dark while theme is "system" (palette() references are resolved when a style sheet is set)."""
    global _connected, _choice
    app = QApplication.instance()
    if app is None:
        return
    _choice = theme if theme in THEMES else "system"
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(palette_for(is_dark(_choice)))
    app.setStyleSheet(STYLE)
    if not _connected:
        _connected = True
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(_choice))


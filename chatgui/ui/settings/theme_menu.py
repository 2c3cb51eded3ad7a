"""View > Theme: System / Light / Dark. Applies at once; saved with the other settings."""
from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from chatgui.ui.common.theme import THEMES, apply_theme

LABELS = {"system": QT_TRANSLATE_NOOP("ThemeMenu", "Follow the system"),
          "light": QT_TRANSLATE_NOOP("ThemeMenu", "Light"),
          "dark": QT_TRANSLATE_NOOP("ThemeMenu", "Dark")}


class ThemeMenu(QMenu):
    def __init__(self, window, parent=None):
        super().__init__(self.tr("&Theme"), parent)
        self.setObjectName("themeMenu")
        self.window = window
        group = QActionGroup(self)
        self.actions_by_theme: dict[str, QAction] = {}
        for theme in THEMES:
            action = QAction(self.tr(LABELS[theme]), self, checkable=True)
            action.setChecked(window.settings.theme == theme)
            action.triggered.connect(lambda _checked, t=theme: self.choose(t))
            group.addAction(action)
            self.addAction(action)
            self.actions_by_theme[theme] = action

    def choose(self, theme: str) -> None:
        self.window.settings.theme = theme
        self.actions_by_theme[theme].setChecked(True)
        apply_theme(theme)
        self.window.autosave.schedule()

"""View > Language: System / English / 简体中文. The choice is saved at once and applies from the
next start (the interface is translated once, before the window is built: see i18n); the notice
offers to restart now (everything is saved as on any close)."""
from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP, QTranslator
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from chatgui.i18n import qm_path

from chatgui.ui.common.i18n import LANGUAGE_NAMES, current_language, resolve_language
from chatgui.ui.common.restart import request_restart

RESTART_NOTE = QT_TRANSLATE_NOOP("LanguageMenu", "The new language is used from the next start of chatgui.")


class LanguageMenu(QMenu):
    def __init__(self, window, parent=None):
        super().__init__(parent)
        self.setTitle(self.tr("&Language"))
        self.setObjectName("languageMenu")
        self.window = window
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.actions_by_code: dict[str, QAction] = {}
        choices = [("system", self.tr("System language"))] + list(LANGUAGE_NAMES.items())
        for code, name in choices:
            action = QAction(name, self, checkable=True)
            action.setData(code)
            action.setChecked(code == window.settings.language)
            action.triggered.connect(lambda _checked=False, c=code: self.choose(c))
            self.group.addAction(action)
            self.addAction(action)
            self.actions_by_code[code] = action

    def choose(self, code: str) -> None:
        settings = self.window.settings
        if code == settings.language:
            return
        settings.language = code
        self.actions_by_code[code].setChecked(True)
        self.window.autosave.schedule()
        note = self.tr(RESTART_NOTE)
        target = resolve_language(code, env={})
        if target != current_language():
            other = _translated_in(target, "LanguageMenu", RESTART_NOTE)
            if other and other != note:
                note = f"{note}\n{other}"
        if target == current_language():   # e.g. back to the language in use: nothing to restart for
            self.window.notices.remove("language")
            return
        self.window.notices.show_notice("language", note, "info",
                                        [(self.tr("Restart now"), lambda: request_restart(self.window))])


def _translated_in(language: str, context: str, text: str) -> str:
    """`text` in `language` (not the interface's language): to say something in both."""
    if language == "en":
        return text
    translator = QTranslator()
    if not translator.load(str(qm_path(language))):
        return ""
    return translator.translate(context, text) or ""


def build_language_menu(window, view_menu: QMenu) -> LanguageMenu:
    view_menu.addSeparator()
    menu = LanguageMenu(window, view_menu)
    view_menu.addMenu(menu)
    return menu

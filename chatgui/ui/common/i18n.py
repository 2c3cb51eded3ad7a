"""The interface language: English (the source strings) or Simplified Chinese.

Strings are marked with `self.tr("...")` in QObject subclasses and with `translate("Context", "...")`
(below) elsewhere; pyside6-lupdate extracts both (a helper named `tr(context, text)` it would
misread). Constants are marked with QT_TRANSLATE_NOOP("Context", "...") and translated where
they are shown. A string with values is translated first and filled in after (`.format`).

The language is chosen once, before the window is built (chatgui.ui.app.main): CHATGUI_LANG, else
the "language" setting ("system", "en", "zh_CN"); "system" follows the OS locale (zh_* -> zh_CN).
The View > Language menu changes the setting; it applies from the next start.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QLibraryInfo, QLocale, QTranslator

from chatgui.i18n import LANGUAGES as TRANSLATED, qm_path

# What the language menu offers, each in its own language (the way a user looks for it).
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}

# Sampling presets are data keys (chatgui.common.types.PRESETS, saved in message meta): only
# their display is translated.
PRESET_NAMES = (QT_TRANSLATE_NOOP("Preset", "Precise"), QT_TRANSLATE_NOOP("Preset", "Balanced"),
                QT_TRANSLATE_NOOP("Preset", "Creative"), QT_TRANSLATE_NOOP("Preset", "Custom"))

_current = "en"


def translate(context: str, text: str, disambiguation: str | None = None, n: int = -1) -> str:
    """QCoreApplication.translate; lupdate extracts calls of this name too."""
    return QCoreApplication.translate(context, text, disambiguation, n)


def preset_label(name: str) -> str:
    """How a sampling preset's name is shown."""
    return QCoreApplication.translate("Preset", name)


def resolve_language(setting: str | None = None, env: dict | None = None, system: QLocale | None = None) -> str:
    """"en" or "zh_CN": CHATGUI_LANG wins, then the setting; "system" (or anything unknown)
    follows the OS locale."""
    env = os.environ if env is None else env
    for choice in ((env.get("CHATGUI_LANG") or "").strip(), (setting or "").strip()):
        language = _normalize(choice)
        if language:
            return language
    system = system or QLocale.system()
    preferred = (system.uiLanguages() or [system.name()])[0]   # the UI language, not the number format
    return "zh_CN" if _normalize(preferred) == "zh_CN" else "en"


def language_setting() -> str:
    """The saved "language" setting, read without side effects (MainWindow loads the settings
    properly, reporting and moving aside a broken file); "system" when there is none."""
    import json

    from chatgui.common import paths
    try:
        with open(paths.settings_path(), "rb") as f:
            data = json.loads(f.read(4 * 1024 * 1024).decode("utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return "system"
    language = data.get("language") if isinstance(data, dict) else None
    return language if isinstance(language, str) else "system"


def _normalize(name: str) -> str | None:
    """A language name as users write it ("zh_CN", "zh-Hans", "zh", "en_US.UTF-8") -> "zh_CN"/"en",
    or None for "", "system" and languages the app does not have."""
    name = name.split(".")[0].replace("-", "_").lower()
    if not name or name in ("system", "c", "posix"):
        return None
    if name.startswith("zh"):
        return "zh_CN"   # the only Chinese there is (traditional-script users read it better than English)
    if name.startswith("en"):
        return "en"
    return None


def install_translators(language: str, app=None) -> list[QTranslator]:
    """Install the app's and Qt's own (standard dialogs) translations for `language`; returns
    the installed translators (remove_translators undoes it). English installs none."""
    global _current
    app = app or QCoreApplication.instance()
    _current = "en"
    if language not in TRANSLATED or app is None:
        return []
    installed = []
    ours = QTranslator(app)
    if ours.load(str(qm_path(language))):
        app.installTranslator(ours)
        installed.append(ours)
        _current = language
    qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    for name in ("qtbase", "qt"):
        qt = QTranslator(app)
        if qt.load(f"{name}_{language}", qt_dir):
            app.installTranslator(qt)
            installed.append(qt)
            break
    return installed


def remove_translators(translators: list[QTranslator], app=None) -> None:
    global _current
    app = app or QCoreApplication.instance()
    for translator in translators:
        if app is not None:
            app.removeTranslator(translator)
    _current = "en"


def current_language() -> str:
    """The language the interface is shown in ("en" when no translation was installed)."""
    return _current

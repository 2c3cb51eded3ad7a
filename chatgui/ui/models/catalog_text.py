"""The catalog's words shown on the Models page (chatgui/models/catalog.json is data, in English):
each description and language name is listed here, so that pyside6-lupdate puts it in the
translation files. tests/test_i18n.py checks that every one in the catalog is listed."""
from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP

from chatgui.ui.common.i18n import translate

CONTEXT = "Catalog"
CATALOG_TEXTS = (
    QT_TRANSLATE_NOOP("Catalog", "Tiny and fast: short chats and simple questions in English. Often wrong on facts and "
                                 "code."),
    QT_TRANSLATE_NOOP("Catalog", "Small coding helper: short functions, explaining snippets, quick answers."),
    QT_TRANSLATE_NOOP("Catalog", "Better answers: code, reasoning about code, general questions. Slower than the "
                                 "small ones."),
    QT_TRANSLATE_NOOP("Catalog", "Text completion, not chat: continues the text you give it. A base for "
                                 "experiments."),
    QT_TRANSLATE_NOOP("Catalog", "English"),
    QT_TRANSLATE_NOOP("Catalog", "Chinese"),
    QT_TRANSLATE_NOOP("Catalog", "many programming languages"),
    QT_TRANSLATE_NOOP("Catalog", "many others (pretrained, multilingual)"),
)


def catalog_text(text: str) -> str:
    """A catalog description or language name in the interface's language (as it is if unknown)."""
    return translate(CONTEXT, text)

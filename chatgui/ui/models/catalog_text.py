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
    QT_TRANSLATE_NOOP("Catalog", "100+ others"),
    QT_TRANSLATE_NOOP("Catalog", "140+ others"),
    QT_TRANSLATE_NOOP("Catalog", "A solid small all-rounder: chat, summaries, rewriting."),
    QT_TRANSLATE_NOOP("Catalog", "Arabic"),
    QT_TRANSLATE_NOOP("Catalog", "Czech"),
    QT_TRANSLATE_NOOP("Catalog", "Dutch"),
    QT_TRANSLATE_NOOP("Catalog", "French"),
    QT_TRANSLATE_NOOP("Catalog", "German"),
    QT_TRANSLATE_NOOP("Catalog", "Good writing and many languages; friendly chat."),
    QT_TRANSLATE_NOOP("Catalog", "Hindi"),
    QT_TRANSLATE_NOOP("Catalog", "IBM's small business assistant: summaries, extraction, plain answers."),
    QT_TRANSLATE_NOOP("Catalog", "Italian"),
    QT_TRANSLATE_NOOP("Catalog", "Japanese"),
    QT_TRANSLATE_NOOP("Catalog", "Korean"),
    QT_TRANSLATE_NOOP("Catalog", "Newer hybrid Qwen (linear attention in 3 of 4 layers): long chats stay light."),
    QT_TRANSLATE_NOOP("Catalog", "OpenAI's open model: strong reasoning (its analysis is shown in the Thinking "
                                 "section), fast for its size."),
    QT_TRANSLATE_NOOP("Catalog", "Portuguese"),
    QT_TRANSLATE_NOOP("Catalog", "Small, open and careful: chat and reasoning (it can think before answering)."),
    QT_TRANSLATE_NOOP("Catalog", "Spanish"),
    QT_TRANSLATE_NOOP("Catalog", "Strong at maths and reasoning for its size; weaker on facts."),
    QT_TRANSLATE_NOOP("Catalog", "Thai"),
    QT_TRANSLATE_NOOP("Catalog", "The best answers here: a Mixture-of-Experts that reads ~3B weights a token, so "
                                 "it runs like a small model if memory allows."),
    QT_TRANSLATE_NOOP("Catalog", "Thinks before it answers (shown in the Thinking section): code, maths, reasoning."),
    QT_TRANSLATE_NOOP("Catalog", "many others"),
    QT_TRANSLATE_NOOP("Catalog", "Embeddings for Knowledge: finds passages by meaning as well as by their words. "
                                 "Small and fast; English only."),
    QT_TRANSLATE_NOOP("Catalog", "Embeddings for Knowledge: finds passages by meaning as well as by their words. "
                                 "Better than BGE small, about four times slower; English."),
    QT_TRANSLATE_NOOP("Catalog", "Embeddings for Knowledge: the best of these at finding passages by meaning, in "
                                 "many languages; the slowest to index."),
)


def catalog_text(text: str) -> str:
    """A catalog description or language name in the interface's language (as it is if unknown)."""
    return translate(CONTEXT, text)

"""Syntax colours for the code blocks of a rendered Markdown document, by Pygments.

The fence's language (```python) picks the lexer; a block without one is left plain (guessing is
slow and often wrong). Colours come from a light or a dark Pygments style, whichever suits the
palette. Very long blocks are left plain: colouring must never hold up the window.
"""
from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

MAX_HIGHLIGHT_CHARS = 20_000
LIGHT_STYLE, DARK_STYLE = "default", "monokai"


def _is_code(block) -> bool:
    return block.blockFormat().nonBreakableLines()


def _palette_is_dark() -> bool:
    return QGuiApplication.palette().color(QPalette.ColorRole.Base).lightnessF() < 0.4


def _formats(style_name: str) -> dict:
    from pygments.styles import get_style_by_name
    style = get_style_by_name(style_name)
    out = {}
    for token, spec in style:
        fmt = QTextCharFormat()
        if spec["color"]:
            fmt.setForeground(QColor("#" + spec["color"]))
        if spec["bold"]:
            fmt.setFontWeight(QFont.Weight.Bold)
        if spec["italic"]:
            fmt.setFontItalic(True)
        out[token] = fmt
    return out


_cache: dict[str, dict] = {}


def highlight_code_blocks(doc: QTextDocument) -> int:
    """Colour every fenced code block with a known language; returns how many were coloured."""
    coloured = 0
    block = doc.begin()
    while block.isValid():
        if not _is_code(block):
            block = block.next()
            continue
        language = block.blockFormat().stringProperty(QTextFormat.Property.BlockCodeLanguage)
        run = []
        while block.isValid() and _is_code(block) and (
                not run or block.blockFormat().stringProperty(QTextFormat.Property.BlockCodeLanguage) == language):
            run.append(block)
            block = block.next()
        if language and _colour_run(doc, run, language):
            coloured += 1
    return coloured


def _colour_run(doc: QTextDocument, run: list, language: str) -> bool:
    from pygments import lex
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound
    text = "\n".join(b.text() for b in run)
    if len(text) > MAX_HIGHLIGHT_CHARS:
        return False
    try:
        lexer = get_lexer_by_name(language.strip().lower(), stripnl=False, ensurenl=False)
    except ClassNotFound:
        return False
    style = DARK_STYLE if _palette_is_dark() else LIGHT_STYLE
    formats = _cache.get(style) or _cache.setdefault(style, _formats(style))
    cursor = QTextCursor(doc)
    position = run[0].position()
    for token, value in lex(text, lexer):
        fmt = formats.get(token)
        while fmt is None and token.parent is not None:   # e.g. Name.Function.Magic -> Name.Function
            token = token.parent
            fmt = formats.get(token)
        if fmt is not None and fmt.foreground().style() != 0 and value.strip():
            cursor.setPosition(position)
            cursor.setPosition(position + len(value), QTextCursor.MoveMode.KeepAnchor)
            cursor.mergeCharFormat(fmt)
        position += len(value)
    return True

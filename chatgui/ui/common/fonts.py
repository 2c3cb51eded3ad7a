"""Font fallbacks: colour emoji and Chinese, Japanese and Korean text must not come out as empty
boxes. Qt falls back through the OS's font configuration, but that often picks no emoji font (or
a monochrome one): the first installed of these families are named after the UI font."""
from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

EMOJI_FAMILIES = ("Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", "Twemoji", "EmojiOne Color")
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei",
                "Noto Sans CJK JP", "Noto Sans CJK KR")


def fallback_families() -> list[str]:
    """The installed fallback families, emoji first (its glyphs win for emoji code points)."""
    installed = set(QFontDatabase.families())
    return [family for family in (*EMOJI_FAMILIES, *CJK_FAMILIES) if family in installed]


def apply_font_fallbacks(app: QApplication) -> None:
    """Name them as substitutes of the UI font: used only for characters it lacks. (Adding them
    to the font's own family list instead would make Qt measure text with the emoji font's huge
    bitmap metrics: empty labels then ask for thousands of pixels.)"""
    family = app.font().family()
    known = {f.casefold() for f in QFont.substitutes(family)}   # (Qt keeps them in lower case)
    extra = [f for f in fallback_families() if f.casefold() not in known]
    if extra:
        QFont.insertSubstitutions(family, extra)

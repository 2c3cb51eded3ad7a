"""Translations of the interface, shipped as package data.

chatgui_zh_CN.ts is the source (made by pyside6-lupdate from chatgui/ui/*.py, translated by hand);
chatgui_zh_CN.qm is what the app loads (pyside6-lrelease). packaging/update_translations.sh
remakes both; tests/test_i18n.py fails when they are out of date or incomplete.
"""
from __future__ import annotations

from pathlib import Path

I18N_DIR = Path(__file__).resolve().parent
LANGUAGES = ("zh_CN",)   # besides English, the source language


def qm_path(language: str) -> Path:
    return I18N_DIR / f"chatgui_{language}.qm"


def ts_path(language: str) -> Path:
    return I18N_DIR / f"chatgui_{language}.ts"

"""Which catalog model to point a new user to: the welcome card's recommendation, and the line that
points to a better model than the default, with its size and fit."""
from __future__ import annotations

from .catalog import default_entry, get_entry, load_catalog
from .fit import FITS, Memory, entry_fit

SUGGESTED = "qwen2.5-coder-1.5b"


def better_model_suggestion(context_length: int = 4096, memory: Memory | None = None) -> str:
    """e.g. 'For better answers, try Qwen2.5 Coder 1.5B Instruct (1.12 GB, Fits): Models page, or
    `python -m chatgui.models pull qwen2.5-coder-1.5b`.'"""
    e = get_entry(SUGGESTED)
    size = f"{e.size / 1e9:.2f} GB" if e.size >= 1e9 else f"{e.size / 1e6:.0f} MB"
    return (f"For better answers, try {e.name} ({size}, {entry_fit(e, context_length, memory)}): "
            f"Models page, or `python -m chatgui.models pull {e.id}`.")


def recommended_entry(context_length: int = 4096, memory: Memory | None = None):
    """The catalog model the welcome card offers: the largest chat model that fits this computer
    (more parameters answer better), else the default one (it runs anywhere). Base models are
    left out: they continue text instead of answering."""
    fitting = [e for e in load_catalog() if e.is_chat and entry_fit(e, context_length, memory) == FITS]
    return max(fitting, key=lambda e: e.size) if fitting else default_entry()

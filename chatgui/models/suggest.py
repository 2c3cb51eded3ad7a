"""The first-run line that points to a better model than the default, with its size and fit."""
from __future__ import annotations

from .catalog import get_entry
from .fit import Memory, entry_fit

SUGGESTED = "qwen2.5-coder-1.5b"


def better_model_suggestion(context_length: int = 4096, memory: Memory | None = None) -> str:
    """e.g. 'For better answers, try Qwen2.5 Coder 1.5B Instruct (1.12 GB, Fits): Models page, or
    `python -m chatgui.models pull qwen2.5-coder-1.5b`.'"""
    e = get_entry(SUGGESTED)
    size = f"{e.size / 1e9:.2f} GB" if e.size >= 1e9 else f"{e.size / 1e6:.0f} MB"
    return (f"For better answers, try {e.name} ({size}, {entry_fit(e, context_length, memory)}): "
            f"Models page, or `python -m chatgui.models pull {e.id}`.")

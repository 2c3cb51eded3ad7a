"""Which catalog model to point a new user to: the welcome card's recommendation, and the line that
points to a better model than the default, with its size and fit."""
from __future__ import annotations

from .catalog import get_entry
from .fit import Memory, entry_fit, recommended_model

SUGGESTED = "qwen2.5-coder-1.5b"     # named when nothing bigger than the default fits


def better_model_suggestion(context_length: int = 4096, memory: Memory | None = None,
                            architectures=None) -> str:
    """e.g. 'For better answers, try Qwen3 4B (2.50 GB, Fits): Models page, or
    `python -m chatgui.models pull qwen3-4b`.' The model is the best that fits (recommended_model)."""
    e = recommended_model(context_length, memory, architectures=architectures)
    if e.default:
        e = get_entry(SUGGESTED)
    size = f"{e.size / 1e9:.2f} GB" if e.size >= 1e9 else f"{e.size / 1e6:.0f} MB"
    return (f"For better answers, try {e.name} ({size}, {entry_fit(e, context_length, memory)}): "
            f"Models page, or `python -m chatgui.models pull {e.id}`.")


def recommended_entry(context_length: int = 4096, memory: Memory | None = None, architectures=None):
    """The catalog model the welcome card offers: the best chat model that fits this computer
    (fit.recommended_model: more parameters answer better, at a usable estimated speed), else the
    default one (it runs anywhere). architectures: those the engine runs well (the caller knows
    them: this layer cannot ask the engine)."""
    return recommended_model(context_length, memory, architectures=architectures)

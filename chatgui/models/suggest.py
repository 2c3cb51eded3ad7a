"""Which catalog model to point a new user to: the welcome card's recommendation."""
from __future__ import annotations

from .fit import Memory, recommended_model


def recommended_entry(context_length: int = 4096, memory: Memory | None = None, architectures=None):
    """The catalog model the welcome card offers: the best chat model that fits this computer
    (fit.recommended_model: more parameters answer better, at a usable estimated speed), else the
    default one (it runs anywhere). architectures: those the engine runs well (the caller knows
    them: this layer cannot ask the engine)."""
    return recommended_model(context_length, memory, architectures=architectures)

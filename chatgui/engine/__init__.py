"""chatgui's inference engine: GGUF models in plain PyTorch. No Qt here.

Names are imported lazily so that `chatgui.common.types` (plain dataclasses) can be used by the
UI before torch is imported; torch loads on first use of anything that needs it.
"""
from __future__ import annotations

from importlib import import_module

from .errors import EngineError, ModelLoadError, PromptTooLongError, TemplateError
from chatgui.common.types import PRESETS, Alternative, GenerationStats, SamplingSettings, TokenEvent

_LAZY = {
    "load_model": ".chat_model", "ChatModel": ".chat_model", "Generation": ".chat_model",
    "available_devices": ".chat_model", "resolve_device": ".chat_model",
    "ModelArgs": ".model", "Transformer": ".model",
    "cache_size_bytes": ".weight_cache", "clear_cache": ".weight_cache",
}

__all__ = ["EngineError", "ModelLoadError", "PromptTooLongError", "TemplateError", "PRESETS", "Alternative",
           "GenerationStats", "SamplingSettings", "TokenEvent", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The interface every chat backend offers: chatgui's own engine (engine.ChatModel) and an
OpenAI-compatible server (remote.RemoteModel).

Callers (the model runner, the server, the UI) use only what is declared here, and ask
`capabilities` what else a backend can do instead of checking its kind or probing attributes.
"""
from __future__ import annotations

import threading
from typing import Iterator, Protocol, runtime_checkable

from chatgui.common.records import Capabilities, ModelInfo
from chatgui.common.types import GenerationStats, SamplingSettings, TokenEvent


class Generation(Protocol):
    """A reply being written: iterate for TokenEvents. `stats` fills in as it runs; when the
    iteration ends, `text` is the whole reply and `token_ids` its tokens (empty for a server)."""
    stats: GenerationStats
    text: str
    token_ids: list[int] | tuple

    def __iter__(self) -> Iterator[TokenEvent]: ...


@runtime_checkable
class ChatBackend(Protocol):
    name: str
    context_length: int | None
    capabilities: Capabilities

    @property
    def sha256(self) -> str | None:
        """The model file's hash (None where there is no file, i.e. a server)."""

    def info(self) -> ModelInfo:
        """What the UI shows about this backend once it is ready."""

    def count_tokens(self, messages: list[dict]) -> int:
        """The chat's size in tokens (an estimate where capabilities.exact_token_counts is False)."""

    def generate(self, messages: list[dict], settings: SamplingSettings | None = None,
                 cancel: threading.Event | None = None, reply_prefix_ids=()) -> Generation:
        """Start a reply. reply_prefix_ids needs capabilities.reply_prefix."""

"""The interface every chat backend offers: chatgui's own engine (engine.ChatModel) and an
OpenAI-compatible server (remote.RemoteModel).

Callers (the model runner, the server, the UI) use only what is declared here, and ask
`capabilities` what else a backend can do instead of checking its kind or probing attributes.
"""
from __future__ import annotations

import threading
from typing import Iterator, Protocol, Sequence, runtime_checkable

from chatgui.common.prompt import PromptMessage
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

    def count_tokens(self, messages: Sequence[PromptMessage]) -> int:
        """The chat's size in tokens (an estimate where capabilities.exact_token_counts is False)."""

    def generate(self, messages: Sequence[PromptMessage], settings: SamplingSettings | None = None,
                 cancel: threading.Event | None = None, reply_prefix_ids=()) -> Generation:
        """Start a reply. reply_prefix_ids needs capabilities.reply_prefix. cancel: a
        runner.CancelFlag (a job's), so that a backend waiting on something else can be woken
        when it is set (the remote backend needs one; the engine only reads it)."""


@runtime_checkable
class ExplainableBackend(ChatBackend, Protocol):
    """A backend whose capabilities.next_token_logits is True (engine.ChatModel)."""

    def explain_next_token(self, messages: Sequence[PromptMessage], prefix_ids=(), sampling: dict | None = None,
                           chosen_id: int | None = None, top_n: int = 30, dropped_messages: int | None = None) -> dict:
        """How the token after messages (+ prefix_ids) is chosen under `sampling` (a
        SamplingSettings dict): plain data for the sampling inspector (engine/next_token.py).
        dropped_messages: the turns the inspected reply's prompt dropped (its prompt again)."""


@runtime_checkable
class PreparableBackend(ChatBackend, Protocol):
    """A backend whose capabilities.prepared_prompts is True (engine.ChatModel)."""

    def prepare(self, messages: Sequence[PromptMessage], max_new_tokens: int,
                cancel: threading.Event | None = None) -> int:
        """Compute the chat's context ahead of its next message (stopped by cancel); returns the
        positions now cached."""


@runtime_checkable
class ServableBackend(ChatBackend, Protocol):
    """What the API server (chatgui.server) uses beyond ChatBackend; a backend whose
    capabilities.can_be_served is True offers it (engine.ChatModel)."""
    file_name: str   # the model file's name without its extension: the id a server announces

    def tokenize(self, text: str) -> list[int]:
        """Token ids of raw text (/v1/completions continues them, no chat template)."""

    def token_text(self, token_id: int) -> str: ...

    def token_bytes(self, token_id: int) -> bytes:
        """The token's exact bytes (its text may hold part of a UTF-8 character)."""

    def prompt_logprobs(self, ids: list[int], k: int) -> list[tuple[float, list[tuple[float, int]]]]:
        """For each position p >= 1 of ids: (logprob of ids[p] there, the k most likely (logprob,
        id)), in memory bounded by a chunk, not len(ids) x vocab (echo)."""

    def json_constraint(self, schema: dict | None = None):
        """A constraint for generate(constraint=...): replies that are JSON (valid against
        schema if given). Needs capabilities.json_constraints; raises ValueError on a bad schema."""

    def generate(self, messages: Sequence[PromptMessage], settings: SamplingSettings | None = None,
                 cancel: threading.Event | None = None, reply_prefix_ids=(), **options) -> Generation:
        """As ChatBackend.generate; options: prompt_ids (continue these tokens instead of a
        rendered chat), top_alternatives (alternatives per TokenEvent), constraint."""

    def generate_candidates(self, messages: Sequence[PromptMessage], settings: SamplingSettings, n: int,
                            cancel: threading.Event | None = None, **options):
        """n answers decoded together (capabilities.batched_candidates); options as generate's."""

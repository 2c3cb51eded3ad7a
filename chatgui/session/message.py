"""One message of a chat: who wrote it, its text, when, its place in the tree and its metadata."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant")


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Message:
    id: str
    role: str                 # "system", "user" or "assistant"
    content: str
    created: float            # epoch seconds
    parent_id: str | None = None
    # Assistant replies: "sampling" (dict), "seed", "model", "model_sha256", "tokens",
    # "finish_reason", "time_to_first_token", "tokens_per_second", and optionally
    # "token_data": [TokenRecord, ...] (read them with Chat.token_data); explainability adds "branch",
    # "reply_prefix_ids", "replay_of", "replay_identical", "compare_preset"; a remote reply has
    # "backend" (public settings only, never an API key).
    meta: dict = field(default_factory=dict)

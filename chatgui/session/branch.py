"""Branch from a token: write a reply again from one of its tokens on, starting with another one.

The new reply starts with the original's tokens before that position and the chosen token (the
worker's reply_prefix_ids); it records where it came from (ReplyMeta.branch) and gets the prompt
the original had (same_prompt)."""
from __future__ import annotations

from dataclasses import dataclass, field

from chatgui.common.records import BranchPoint, ReplyMeta, TokenRecord

from .chat import Chat


def forced_record(record: TokenRecord, token_id: int) -> TokenRecord:
    """The token record for `token_id` put in place of `record`'s token (branch from a token): its
    probabilities are those it had at that position, its alternatives are the position's."""
    alts = {a[0]: a for a in record.alts}
    salts = {a[0]: a for a in record.sampled_alts}
    entry = alts.get(token_id) or salts.get(token_id)
    sampled = None
    if record.has_sampled:
        sampled = float(salts[token_id][2]) if token_id in salts else 0.0
    return TokenRecord(int(token_id), entry[1] if entry else "",
                       float(alts[token_id][2]) if token_id in alts else 0.0, record.alts,
                       sampled, record.sampled_alts if record.has_sampled else (), forced=True)


def same_prompt(meta: ReplyMeta) -> dict:
    """Options that give a new reply the prompt `meta`'s reply had: in a chat longer than the
    context, the same old turns dropped (see ChatModel.fit_reply_prompt)."""
    return {"dropped_messages": meta.dropped_messages} if meta.dropped_messages is not None else {}


@dataclass
class ReplyPlan:
    """A reply to start under `parent_id`: its meta so far, the token records it starts with, the
    sampling settings, and the options for the backend (EngineClient.generate)."""
    parent_id: str
    meta: ReplyMeta
    prefix: list[TokenRecord]
    sampling: dict
    options: dict = field(default_factory=dict)


def plan_branch(chat: Chat, message_id: str, index: int, token_id: int, sampling: dict) -> ReplyPlan | None:
    """The reply that continues `message_id` with `token_id` at token `index` (the current sampling
    settings apply, as for Regenerate); None when there is no such token to branch from."""
    message = chat.messages.get(message_id)
    if message is None or message.parent_id is None or not isinstance(message.meta, ReplyMeta):
        return None
    tokens = chat.token_data(message_id)
    if not 0 <= index < len(tokens):
        return None
    prefix = [*tokens[:index], forced_record(tokens[index], token_id)]
    meta = ReplyMeta(branch=BranchPoint(message_id, index, int(token_id)), reply_prefix_ids=[t.id for t in prefix])
    return ReplyPlan(message.parent_id, meta, prefix, dict(sampling), same_prompt(message.meta))

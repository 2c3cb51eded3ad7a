"""Replay: write a reply again with its recorded settings, seed, reply prefix and model file, and
say whether the text came out the same.

A reply records its model file's sha256, its settings and its seed; on the same file and device
the replay is identical. A server promises nothing of the kind, and a reply whose record is
incomplete cannot be replayed: plan_replay says why not (ReplayRefusal) instead."""
from __future__ import annotations

from dataclasses import dataclass, field

from chatgui.common.records import FinishReason, ModelInfo, ReplyMeta, ValueEnum

from .branch import ReplyPlan, same_prompt
from .chat import Chat
from .message import Message


class ReplayRefusal(ValueEnum):
    NOT_RECORDED = "not_recorded"            # no recorded settings and seed
    NO_MODEL = "no_model"                    # nothing is loaded
    NOT_LOCAL = "not_local"                  # made by a server, or a server is loaded
    OTHER_MODEL_FILE = "other_model_file"    # the loaded file's sha256 is not the recorded one
    TOKENS_INCOMPLETE = "tokens_incomplete"  # the recorded reply prefix is not in its token records


@dataclass
class ReplayPlan(ReplyPlan):
    unchecked_file: bool = False            # no sha256 was recorded: the model file could not be checked
    made_on: str | None = None              # the device it was made on, when it is not the one in use now


@dataclass
class Refusal:
    why: ReplayRefusal
    made: ReplyMeta = field(default_factory=ReplyMeta)   # what the reply recorded (its model, file, hash)


def plan_replay(chat: Chat, message_id: str, loaded: ModelInfo | None, loaded_sha256: str | None) -> ReplayPlan | Refusal:
    """How to replay `message_id` with the model `loaded` (whose file hashes to loaded_sha256, when
    known), or why it cannot be."""
    message = chat.messages[message_id]
    made = message.meta if isinstance(message.meta, ReplyMeta) else ReplyMeta()
    if message.parent_id is None or made.sampling is None or made.seed is None:
        return Refusal(ReplayRefusal.NOT_RECORDED, made)
    if loaded is None:
        return Refusal(ReplayRefusal.NO_MODEL, made)
    if made.is_remote or not loaded.capabilities.replay:
        return Refusal(ReplayRefusal.NOT_LOCAL, made)
    wanted = made.model_sha256
    if wanted and loaded_sha256 and wanted != loaded_sha256:
        return Refusal(ReplayRefusal.OTHER_MODEL_FILE, made)
    prefix_ids = list(made.reply_prefix_ids or [])
    prefix = chat.token_data(message_id)[:len(prefix_ids)]
    if [t.id for t in prefix] != prefix_ids:
        return Refusal(ReplayRefusal.TOKENS_INCOMPLETE, made)
    sampling = {**made.sampling, "seed": made.seed}
    if made.finish_reason is FinishReason.CANCELLED and made.tokens is not None:
        sampling["max_new_tokens"] = max(1, made.tokens - len(prefix_ids))   # it was stopped: as far as it got
    meta = ReplyMeta(replay_of=message_id, branch=made.branch, reply_prefix_ids=made.reply_prefix_ids)
    options = {"expect_sha256": wanted} if wanted else {}
    options.update(same_prompt(made))
    return ReplayPlan(message.parent_id, meta, prefix, sampling, options, unchecked_file=not wanted,
                      made_on=made.device if made.device and made.device != loaded.device else None)


@dataclass(frozen=True)
class ReplayResult:
    failed: bool = False    # it broke off: nothing to compare
    identical: bool = False
    differs_at: int = 0     # the first character that differs (the shorter text's length when one ends first)


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def replay_finished(reply: Message, original: Message) -> ReplayResult | None:
    """A replay's outcome once it has ended (None while it is still being written), recorded in
    its meta (replay_identical) unless it failed."""
    meta = reply.reply_meta
    if meta.finish_reason is None:
        return None
    if meta.finish_reason is FinishReason.ERROR:
        return ReplayResult(failed=True)
    meta.replay_identical = reply.content == original.content
    return ReplayResult(False, meta.replay_identical, first_difference(reply.content, original.content))

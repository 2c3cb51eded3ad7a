"""Compare presets: the next reply written twice, with two presets, side by side; the answers the
user keeps become candidates of that reply in the chat."""
from __future__ import annotations

from dataclasses import dataclass

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import ReplyMeta

from .chat import Chat
from .message import Message
from .roles import Role


@dataclass
class ComparedReply:
    """One side's finished answer: its preset, its text, and its meta (settings, tokens, preset)."""
    preset: str
    text: str
    meta: ReplyMeta


def compared_reply(preset: str, reported: ReplyMeta, text: str, tokens: list, sampling: dict) -> ComparedReply:
    """A side's answer as it would be kept: the worker's statistics, the side's token records, its
    preset and the settings it was written with."""
    reported.token_data, reported.compare_preset, reported.sampling = tokens, preset, sampling
    return ComparedReply(preset, text, reported)


def compare_prompt(chat: Chat, typed_question: str) -> tuple[list[PromptMessage], str, str | None] | None:
    """(messages for the model, the question, the user message the answers go under) to compare:
    the text in the input box as a new question (no message yet: None), else the chat's last
    question; None when there is neither."""
    if typed_question:
        return ([*chat.to_messages_for_model(tool_turns=False), PromptMessage.user(typed_question)],
                typed_question, None)
    last_user = next((m for m in reversed(chat.active_path()) if m.role == Role.USER), None)
    if last_user is None:
        return None
    return chat.to_messages_for_model(upto=last_user.id, tool_turns=False), last_user.content, last_user.id


def keep_compared(chat: Chat, parent_id: str | None, question: str, results: list[ComparedReply],
                  hashes: dict[str, str]) -> list[Message]:
    """Add the kept answers as candidates under the question (asked now when it was new), the
    first one shown. A model file's sha256 known by now (hashes: path -> sha256) is recorded."""
    if parent_id is None or parent_id not in chat.messages:
        parent_id = chat.append(Role.USER, question).id
        if not chat.title:
            chat.title = chat.title_from_first_message()
    kept = []
    for result in results:
        meta = result.meta
        if not meta.model_sha256 and meta.model_path in hashes:
            meta.model_sha256 = hashes[meta.model_path]
        kept.append(chat.add_message(parent_id, Role.ASSISTANT, result.text, meta))
    if kept:
        chat.select(kept[0].id)
    return kept

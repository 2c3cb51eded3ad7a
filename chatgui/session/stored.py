"""The stored form of a chat (the JSON of legacy files and exports; the store's rows hold the same
fields): to it and back, refusing a message tree that is unusable.

Reading is strict about structure (messages, ids, roles, texts, parents), so that a broken file is
kept aside rather than half-loaded and then saved over, and lenient about the rest: cosmetic fields
of the wrong type are reset, metadata keys this version does not know are kept and written back.
"""
from __future__ import annotations

import math

from chatgui.common.records import ReplyMeta, records_from_dicts, records_to_dicts

from .chat import ROOT, Chat
from .message import Message, new_id
from .meta import meta_from_dict
from .roles import ROLES, Role

_MAX_TIME = 32503680000.0  # year 3000: later timestamps are garbage, not dates


class ChatFormatError(ValueError):
    """A chat dict (usually read from a file) does not have the expected shape."""


def message_to_dict(message: Message) -> dict:
    """The stored form: the meta as its dict, token records as theirs."""
    meta = message.meta.to_dict()
    if isinstance(message.meta, ReplyMeta) and isinstance(message.meta.token_data, list):
        meta["token_data"] = records_to_dicts(message.meta.token_data)
    return {"id": message.id, "role": message.role.value, "content": message.content, "created": message.created,
            "parent_id": message.parent_id, "meta": meta}


def chat_to_dict(chat: Chat) -> dict:
    return {"id": chat.id, "title": chat.title, "created": chat.created, "updated": chat.updated,
            "system_prompt": chat.system_prompt,
            "messages": [message_to_dict(m) for m in chat.messages.values()], "selected": dict(chat.selected)}


def chat_from_dict(d: object) -> Chat:
    """Rebuild a chat, raising ChatFormatError if the message tree is unusable.

    Structure (messages, ids, roles, texts, parents) must be right or the chat is refused.
    Cosmetic fields of the wrong type (title, times, meta, selection) are reset. A "settings"
    field (written by versions before 0.x, never read) is ignored.
    """
    if not isinstance(d, dict):
        raise ChatFormatError("it does not contain a chat")
    raw = d.get("messages", [])
    if not isinstance(raw, list):
        raise ChatFormatError("its 'messages' field is not a list")
    messages: dict[str, Message] = {}
    for i, item in enumerate(raw):
        msg = message_from_dict(item, i)
        if msg.id in messages:
            raise ChatFormatError(f"message id {msg.id!r} appears twice")
        messages[msg.id] = msg
    _check_tree(messages)
    chat = Chat(
        id=d["id"] if isinstance(d.get("id"), str) and d["id"] else new_id(),
        title=_str_or(d.get("title"), ""),
        created=time_or(d.get("created"), 0.0),
        updated=time_or(d.get("updated"), 0.0),
        system_prompt=d["system_prompt"] if isinstance(d.get("system_prompt"), str) else None,
        messages=messages,
    )
    sel = d.get("selected")
    if isinstance(sel, dict):  # keep only choices that still make sense
        for parent, child in sel.items():
            m = messages.get(child) if isinstance(child, str) else None
            if m is not None and (m.parent_id or ROOT) == parent:
                chat.selected[parent] = child
    return chat


def _str_or(value: object, default):
    return value if isinstance(value, str) else default


def time_or(value: object, default: float) -> float:
    """A stored time if it is one (seconds since 1970, before the year 3000), else `default`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0 <= value <= _MAX_TIME:
        return float(value)
    return default


def message_from_dict(item: object, i: int) -> Message:
    if not isinstance(item, dict):
        raise ChatFormatError(f"message {i} is not an object")
    mid, role, content, parent = item.get("id"), item.get("role"), item.get("content"), item.get("parent_id")
    if not isinstance(mid, str) or not mid:
        raise ChatFormatError(f"message {i} has no valid id")
    if role not in ROLES:
        raise ChatFormatError(f"message {i} has an unknown role {role!r}")
    if not isinstance(content, str):
        raise ChatFormatError(f"message {i} has no text")
    if parent is not None and not isinstance(parent, str):
        raise ChatFormatError(f"message {i} has an invalid parent")
    meta = item.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    if "token_data" in meta:  # the stored dicts, typed (what is not a record is left out)
        meta["token_data"] = records_from_dicts(meta["token_data"])
    return Message(mid, Role(role), content, time_or(item.get("created"), 0.0), parent, meta_from_dict(role, meta))


def _check_tree(messages: dict[str, Message]) -> None:
    """Every parent must exist and following parents must reach the top (no cycles)."""
    good: set[str] = set()
    for start in messages.values():
        trail: set[str] = set()
        node = start
        while node.parent_id is not None and node.id not in good:
            if node.id in trail:
                raise ChatFormatError("the messages form a cycle")
            trail.add(node.id)
            parent = messages.get(node.parent_id)
            if parent is None:
                raise ChatFormatError(f"message {node.id!r} refers to a missing parent")
            node = parent
        good |= trail
        good.add(node.id)

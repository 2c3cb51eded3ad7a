"""Chats to database rows and back, and the compact form of per-token records."""
from __future__ import annotations

import json

from .chat import ROOT, Chat, Message
from . import token_pack
from .errors import StoreError

TOKENS_KEY = "token_data"


def snapshot(chat: Chat) -> Chat:
    """A copy that the writer thread can read while the GUI thread goes on changing `chat`.

    Shallow where that is safe: texts are immutable and token records are never changed in
    place once made (a streamed reply only appends), so lists of them are copied, not the records.
    """
    messages = {}
    for mid, m in chat.messages.items():
        meta = dict(m.meta)
        tokens = meta.get(TOKENS_KEY)
        if isinstance(tokens, list):
            meta[TOKENS_KEY] = list(tokens)
        messages[mid] = Message(m.id, m.role, m.content, m.created, m.parent_id, meta)
    return Chat(id=chat.id, title=chat.title, created=chat.created, updated=chat.updated,
                system_prompt=chat.system_prompt, messages=messages,
                settings=dict(chat.settings) if isinstance(chat.settings, dict) else None,
                selected=dict(chat.selected))


def to_json(value, what: str) -> str | None:
    if value is None:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise StoreError(f"The chat contains data that cannot be saved ({what}): {err}") from err
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \u-escape everything instead of failing
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def from_json(text, default):
    if text is None:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def db_text(text: str) -> str | bytes:
    """SQLite stores UTF-8; a lone surrogate (pasted from a broken source) travels as bytes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def py_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value if isinstance(value, str) else ""


def pack_tokens(tokens: list) -> bytes:
    try:
        return token_pack.pack(tokens)
    except (TypeError, ValueError) as err:
        raise StoreError(f"The chat contains data that cannot be saved (token records): {err}") from err


unpack_tokens = token_pack.unpack


def meta_without_tokens(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != TOKENS_KEY} if TOKENS_KEY in meta else meta


def message_signature(m: Message, selected_child: str | None) -> tuple:
    """What a message row holds apart from its token records: equal signatures, no write."""
    return (m.parent_id, selected_child, m.role, m.content, m.created,
            to_json(meta_without_tokens(m.meta), "message metadata"))


def chat_row(chat: Chat) -> tuple:
    """(title, list_title, created, updated, system_prompt, settings, selected_root)."""
    return (chat.title, chat.title or chat.title_from_first_message(), chat.created, chat.updated,
            chat.system_prompt, to_json(chat.settings, "chat settings"), chat.selected.get(ROOT))

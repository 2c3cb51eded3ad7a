"""Chats to database rows and back, and the compact form of per-token records."""
from __future__ import annotations

import json

from chatgui.common.records import ReplyMeta
from chatgui.session import ROOT, Chat, Message, MessageMeta
from . import token_pack
from .errors import StoreError

TOKENS_KEY = "token_data"


class Snapshot:
    """What a chat holds at one moment, taken cheaply on the caller's (GUI) thread: per message
    its fields, a shallow copy of its typed meta, and how many token records it has. `chat()` builds
    the full copy later, on the writer thread.

    Texts are immutable; token records are never changed in place once made and a streamed
    reply only appends to its list, so the first `n` records of that list are the ones there
    at snapshot time. (A list that is replaced is kept by the meta copy as it was: the window
    replaces a reply's lists of tool calls and results, never changes them in place.)
    """

    __slots__ = ("id", "head", "rows", "selected")

    def __init__(self, chat: Chat):
        self.id = chat.id
        self.head = (chat.title, chat.created, chat.updated, chat.system_prompt)
        self.selected = dict(chat.selected)
        rows = []
        for m in chat.messages.values():
            meta = m.meta.copy()
            tokens = getattr(meta, TOKENS_KEY, None)   # a reply's (ReplyMeta.token_data)
            rows.append((m.id, m.role, m.content, m.created, m.parent_id, meta,
                         len(tokens) if isinstance(tokens, list) else -1))
        self.rows = rows

    def chat(self) -> Chat:
        title, created, updated, system_prompt = self.head
        messages = {}
        for mid, role, content, mcreated, parent, meta, n in self.rows:
            if n >= 0 and isinstance(meta, ReplyMeta) and meta.token_data is not None:
                meta.token_data = meta.token_data[:n]
            messages[mid] = Message(mid, role, content, mcreated, parent, meta)
        return Chat(id=self.id, title=title, created=created, updated=updated, system_prompt=system_prompt,
                    messages=messages, selected=self.selected)


def snapshot(chat: Chat) -> Snapshot:
    return Snapshot(chat)


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


def meta_without_tokens(meta: MessageMeta) -> dict:
    """A message's stored meta as its row holds it: the token records have their own table."""
    d = meta.to_dict()
    d.pop(TOKENS_KEY, None)
    return d


def message_signature(m: Message, selected_child: str | None, meta: dict | None = None) -> tuple:
    """What a message row holds apart from its token records: equal signatures, no write.
    `meta`: meta_without_tokens(m.meta), when the caller has it already."""
    return (m.parent_id, selected_child, m.role.value, m.content, m.created,
            to_json(meta_without_tokens(m.meta) if meta is None else meta, "message metadata"))


def chat_row(chat: Chat) -> tuple:
    """(title, list_title, created, updated, system_prompt, settings, selected_root). The settings
    column is no longer used (always NULL; older versions wrote unused sampling settings there)."""
    return (chat.title, chat.title or chat.title_from_first_message(), chat.created, chat.updated,
            chat.system_prompt, None, chat.selected.get(ROOT))

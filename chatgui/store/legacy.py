"""Reading chat JSON files: the one-file-per-chat layout of chatgui before the database, and
chatgui's JSON export (the same format). Used by the migration and by import.

A file that cannot be used raises Unusable; `broken` says whether it is damaged (move it aside
as `.corrupt`) or only not ours to touch (unreadable, a folder, written by a newer chatgui).
"""
from __future__ import annotations

import json
from pathlib import Path

from chatgui.session import Chat, ChatFormatError
from .errors import describe_os_error
from . import token_pack
from .export import SCHEMA
from .files import FileTooLarge, NotRegularFile, read_capped

MAX_CHAT_FILE_BYTES = 64 * 1024 * 1024


class Unusable(Exception):
    """A chat file the store cannot use. `broken`: move it aside; otherwise leave it alone."""

    def __init__(self, reason: str, broken: bool):
        super().__init__(reason)
        self.reason = reason
        self.broken = broken


def read_bytes(path: Path, limit: int) -> bytes:
    try:
        return read_capped(path, limit)
    except FileTooLarge as err:
        raise Unusable(str(err), broken=True) from None
    except NotRegularFile as err:
        raise Unusable(str(err), broken=False) from None
    except OSError as err:
        raise Unusable(f"it cannot be read ({describe_os_error(err)})", broken=False) from None


def parse_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Unusable("it is not UTF-8 text", broken=True) from None
    except (ValueError, RecursionError) as err:
        raise Unusable(f"it is not valid JSON ({err})", broken=True) from None


def chat_from_document(raw: object) -> Chat:
    """A chat from a decoded chatgui chat document (file or export)."""
    if not isinstance(raw, dict):
        raise Unusable("it does not contain a chat", broken=True)
    schema = raw.get("schema")
    if type(schema) is not int or schema < 1:
        raise Unusable("it has no valid format version", broken=True)
    if schema > SCHEMA:
        raise Unusable(f"it was written by a newer version of chatgui (format {schema})", broken=False)
    try:
        return Chat.from_dict(_unpacked(raw))
    except ChatFormatError as err:
        raise Unusable(str(err), broken=True) from None


def _unpacked(raw: dict) -> dict:
    """An export's packed token records (format 2, token_pack.PACKED_KEY in a message's meta) as
    the "token_data" the chat reads; the document is not changed."""
    items = raw.get("messages")
    if not isinstance(items, list) or not any(
            isinstance(m, dict) and isinstance(m.get("meta"), dict) and token_pack.PACKED_KEY in m["meta"]
            for m in items):
        return raw
    messages = []
    for m in items:
        meta = m.get("meta") if isinstance(m, dict) else None
        if isinstance(meta, dict) and token_pack.PACKED_KEY in meta:
            meta = dict(meta)
            records = token_pack.from_text(meta.pop(token_pack.PACKED_KEY))
            if records:
                meta["token_data"] = records
            m = {**m, "meta": meta}
        messages.append(m)
    return {**raw, "messages": messages}


def read_chat_file(path: Path, limit: int = MAX_CHAT_FILE_BYTES) -> Chat:
    """The chat in a legacy `<id>.json` file; the file name is its id."""
    chat = chat_from_document(parse_json(read_bytes(path, limit)))
    chat.id = path.stem  # the file name wins, as it did when each chat was a file
    return chat

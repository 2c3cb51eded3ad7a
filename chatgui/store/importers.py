"""Reading chats from files the user imports: chatgui's JSON export (one chat) and ChatGPT's
`conversations.json` export (a list of conversations, each a tree in a `mapping`)."""
from __future__ import annotations

import math
from pathlib import Path

from .chat import ROLES, Chat, Message, new_id
from .errors import StoreError
from .legacy import Unusable, chat_from_document, parse_json, read_bytes


def fresh_id() -> str:
    return new_id()


def read_import(path: Path, limit: int) -> list[Chat]:
    """The chats in `path`; raises StoreError with a sentence for the user if there are none."""
    try:
        doc = parse_json(read_bytes(path, limit))
        if isinstance(doc, list):
            chats = [from_chatgpt(c) for c in doc if isinstance(c, dict) and isinstance(c.get("mapping"), dict)]
            if not chats and doc:
                raise Unusable("it is neither a chatgui chat nor a ChatGPT export", broken=True)
            return chats
        if isinstance(doc, dict) and isinstance(doc.get("mapping"), dict):
            return [from_chatgpt(doc)]
        return [chat_from_document(doc)]
    except Unusable as bad:
        raise StoreError(f"Could not import {path.name}: {bad.reason}.", path) from None


def _time(value) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else 0.0


def _text(message: dict) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in parts if isinstance(p, str))  # images and files are left out
    text = content.get("text")
    return text if isinstance(text, str) else ""


def from_chatgpt(conv: dict) -> Chat:
    """One ChatGPT conversation. Nodes without a user/assistant/system text (the hidden empty
    system root, tool calls, images alone) are skipped; their children hang on the nearest kept
    ancestor. The branch ChatGPT showed (`current_node` upward) is the selected one."""
    mapping: dict = conv["mapping"]
    title = conv.get("title")
    chat = Chat(title=title if isinstance(title, str) else "",
                created=_time(conv.get("create_time")), updated=_time(conv.get("update_time")))
    kept: dict[str, str | None] = {}   # ChatGPT node id -> our message id (None: skipped node)

    def our_parent(node_id):
        seen = set()
        while node_id is not None and node_id not in seen:
            seen.add(node_id)
            if kept.get(node_id):
                return kept[node_id]
            node = mapping.get(node_id)
            node_id = node.get("parent") if isinstance(node, dict) else None
        return None

    # Parents before children: walk from the roots down, in the order the export lists children.
    roots = [k for k, n in mapping.items() if isinstance(n, dict) and n.get("parent") not in mapping]
    todo = list(reversed(roots))
    while todo:
        node_id = todo.pop()
        node = mapping.get(node_id)
        if not isinstance(node, dict) or node_id in kept:
            continue
        kept[node_id] = None
        msg = node.get("message")
        if isinstance(msg, dict):
            author = msg.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            text = _text(msg)
            if role in ROLES and text.strip():
                m = Message(new_id(), role, text, _time(msg.get("create_time")) or chat.created,
                            our_parent(node.get("parent")), {})
                model = (msg.get("metadata") or {}).get("model_slug") if isinstance(msg.get("metadata"), dict) else None
                if role == "assistant" and isinstance(model, str):
                    m.meta["model"] = model
                chat.messages[m.id] = m
                kept[node_id] = m.id
        children = node.get("children")
        todo.extend(reversed([c for c in children if isinstance(c, str)] if isinstance(children, list) else []))
    shown = our_parent(conv.get("current_node"))
    if shown:
        chat.select(shown)
    chat.updated = max(chat.updated, chat.created)
    return chat

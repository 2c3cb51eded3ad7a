"""Reading chats from files the user imports: chatgui's JSON export (one chat) and ChatGPT's
`conversations.json` export (a list of conversations, each a tree in a `mapping`)."""
from __future__ import annotations

import math
from pathlib import Path

from chatgui.common.records import ReplyMeta
from chatgui.session import ROLES, Chat, Message, Role, new_id
from .errors import StoreError
from .legacy import Unusable, chat_from_document, parse_json, read_bytes


def fresh_id() -> str:
    return new_id()


# How many ChatGPT nodes are read between looks at the cancel flag.
CANCEL_CHECK_EVERY = 1000


class ImportCancelled(StoreError):
    pass


def read_import(path: Path, limit: int, cancel=None) -> list[Chat]:
    """The chats in `path`; raises StoreError with a sentence for the user if there are none.
    cancel: a flag (threading.Event) the window sets when it closes: ImportCancelled, nothing read."""
    try:
        doc = parse_json(read_bytes(path, limit))
        if isinstance(doc, list):
            chats = []
            for conv in doc:
                _check_cancel(cancel)
                if isinstance(conv, dict) and isinstance(conv.get("mapping"), dict):
                    chats.append(from_chatgpt(conv, cancel))
            if not chats and doc:
                raise Unusable("it is neither a chatgui chat nor a ChatGPT export", broken=True)
            return chats
        if isinstance(doc, dict) and isinstance(doc.get("mapping"), dict):
            return [from_chatgpt(doc, cancel)]
        return [chat_from_document(doc)]
    except Unusable as bad:
        raise StoreError(f"Could not import {path.name}: {bad.reason}.", path) from None
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as err:
        # A shape no check above named: still the file's fault, and said so (nothing is imported).
        raise StoreError(f"Could not import {path.name}: it is not a valid export ({type(err).__name__}: "
                         f"{str(err)[:200]}).", path) from err


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise ImportCancelled("The import was cancelled; nothing was imported.")


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


def _not_valid(why: str) -> Unusable:
    return Unusable(f"it is not a valid ChatGPT export ({why})", broken=True)


def _check_nodes(mapping: dict, current) -> None:
    """The fields the walk relies on have the types ChatGPT writes: anything else is refused as a
    whole (a list as a parent was a bare TypeError)."""
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            continue   # a node that is not an object is skipped, as before
        parent, children = node.get("parent"), node.get("children")
        if parent is not None and not isinstance(parent, str):
            raise _not_valid(f"node {node_id[:40]!r} has a parent that is not an id")
        if children is not None and not isinstance(children, list):
            raise _not_valid(f"node {node_id[:40]!r} has children that are not a list")
    if current is not None and not isinstance(current, str):
        raise _not_valid("its current_node is not an id")


def from_chatgpt(conv: dict, cancel=None) -> Chat:
    """One ChatGPT conversation. Nodes without a user/assistant/system text (the hidden empty
    system root, tool calls, images alone) are skipped; their children hang on the nearest kept
    ancestor. The branch ChatGPT showed (`current_node` upward) is the selected one.

    Each node's nearest kept ancestor is found once and remembered (`anchor`): walking up a
    chain of skipped nodes again for every message is quadratic (hours for a large export)."""
    mapping: dict = conv["mapping"]
    _check_nodes(mapping, conv.get("current_node"))
    title = conv.get("title")
    chat = Chat(title=title if isinstance(title, str) else "",
                created=_time(conv.get("create_time")), updated=_time(conv.get("update_time")))
    done: set[str] = set()
    anchor: dict[str, str | None] = {}   # ChatGPT node id -> our message id it or its nearest kept ancestor has

    def our_parent(node_id):
        """The nearest kept message at or above node_id. Nodes read already have their answer in
        `anchor`; the walk over ones not read yet (a file whose children lists disagree with its
        parents) stores what it finds for every node it passes, so no node is walked twice."""
        path, seen = [], set()
        while node_id is not None and node_id not in anchor and node_id not in seen:
            seen.add(node_id)
            path.append(node_id)
            node = mapping.get(node_id)
            node_id = node.get("parent") if isinstance(node, dict) else None
        found = anchor.get(node_id) if node_id is not None else None
        for passed in path:
            anchor[passed] = found
        return found

    # Parents before children: walk from the roots down, in the order the export lists children.
    roots = [k for k, n in mapping.items() if isinstance(n, dict) and n.get("parent") not in mapping]
    todo = list(reversed(roots))
    steps = 0
    while todo:
        steps += 1
        if steps % CANCEL_CHECK_EVERY == 0:
            _check_cancel(cancel)
        node_id = todo.pop()
        node = mapping.get(node_id)
        if not isinstance(node, dict) or node_id in done:
            continue
        done.add(node_id)
        anchor.pop(node_id, None)   # a guess made before this node was read (see our_parent)
        parent = our_parent(node.get("parent"))
        anchor[node_id] = parent
        msg = node.get("message")
        if isinstance(msg, dict):
            author = msg.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            text = _text(msg)
            if role in ROLES and text.strip():
                m = Message(new_id(), Role(role), text, _time(msg.get("create_time")) or chat.created, parent)
                model = (msg.get("metadata") or {}).get("model_slug") if isinstance(msg.get("metadata"), dict) else None
                if isinstance(m.meta, ReplyMeta) and isinstance(model, str):
                    m.meta.model = model
                chat.messages[m.id] = m
                anchor[node_id] = m.id
        children = node.get("children")
        todo.extend(reversed([c for c in children if isinstance(c, str)] if isinstance(children, list) else []))
    shown = our_parent(conv.get("current_node"))
    if shown:
        chat.select(shown)
    chat.updated = max(chat.updated, chat.created)
    return chat

"""The chat model: a tree of messages, so answers can be regenerated and questions edited.

Every message points at its parent. Siblings are alternatives: several assistant replies to
one user message (regenerate) or several versions of a user message (edit and resend). For
each parent, `Chat.selected` remembers which child is shown; following those choices from the
top gives the conversation on screen (`active_path`). Nothing is ever lost by branching.
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from chatgui.common.records import TokenRecord, records_from_dicts, records_to_dicts
from . import token_pack

ROLES = ("system", "user", "assistant")
ROOT = ""  # key in Chat.selected for the choice among top-level messages
_MAX_TIME = 32503680000.0  # year 3000: later timestamps are garbage, not dates


def new_id() -> str:
    return uuid.uuid4().hex


class ChatFormatError(ValueError):
    """A chat dict (usually read from a file) does not have the expected shape."""


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

    def to_dict(self) -> dict:
        """The stored form: token records as their dicts."""
        meta = self.meta
        if isinstance(meta.get("token_data"), list):
            meta = {**meta, "token_data": records_to_dicts(meta["token_data"])}
        return {"id": self.id, "role": self.role, "content": self.content, "created": self.created,
                "parent_id": self.parent_id, "meta": meta}


def _model_text(message: Message) -> str:
    prompt = message.meta.get("prompt") if message.role == "user" else None
    return prompt if isinstance(prompt, str) and prompt else message.content


@dataclass
class Chat:
    id: str = field(default_factory=new_id)
    title: str = ""
    created: float = 0.0      # 0 means "now"
    updated: float = 0.0      # 0 means "same as created"
    system_prompt: str | None = None
    messages: dict[str, Message] = field(default_factory=dict)   # by id, in creation order
    selected: dict[str, str] = field(default_factory=dict)       # parent id (ROOT for top) -> child id

    # Where a reply's per-token records come from when they were left on disk at load time
    # (HistoryStore.load(tokens=False)): message id -> records. Not part of the chat's data.
    token_loader: Callable[[str], list] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.created = self.created or time.time()
        self.updated = self.updated or self.created

    def token_data(self, message_id: str) -> list[TokenRecord]:
        """A reply's per-token records (the token view's data). Records left on disk are read
        each time and not kept here: the caller keeps them as long as it shows them (scrolling
        through a 500-turn chat with the token view on would otherwise hold all 200,000).
        Records put in the meta as stored dicts (by older code) are typed here, once."""
        message = self.messages.get(message_id)
        if message is None or message.role != "assistant":
            return []
        data = message.meta.get("token_data")
        if data is None and self.token_loader is not None:
            return self.token_loader(message_id) or []
        if not isinstance(data, list):
            return []
        if any(type(t) is not TokenRecord for t in data):
            data = message.meta["token_data"] = records_from_dicts(data)
        return data

    # ---- reading the tree ------------------------------------------------------------------

    def children(self, parent_id: str | None) -> list[Message]:
        return [m for m in self.messages.values() if m.parent_id == parent_id]

    def siblings(self, message_id: str) -> list[Message]:
        """The alternatives at this message's place, itself included, oldest first."""
        return self.children(self.messages[message_id].parent_id)

    def sibling_index(self, message_id: str) -> tuple[int, int]:
        """(index, count) among siblings, index from 0: the UI shows `< index+1/count >`."""
        ids = [m.id for m in self.siblings(message_id)]
        return ids.index(message_id), len(ids)

    def active_path(self) -> list[Message]:
        """The conversation as shown: from the top, follow the selected child at every step."""
        kids = self._children_by_parent()  # once: a long chat's path stays linear, not quadratic
        path: list[Message] = []
        seen: set[str] = set()  # a guard against a cycle made by editing parent_id by hand
        node = self._pick_child(None, kids.get(None, ()))
        while node is not None and node.id not in seen:
            seen.add(node.id)
            path.append(node)
            node = self._pick_child(node.id, kids.get(node.id, ()))
        return path

    def _children_by_parent(self) -> dict[str | None, list[Message]]:
        kids: dict[str | None, list[Message]] = {}
        for m in self.messages.values():
            kids.setdefault(m.parent_id, []).append(m)
        return kids

    def path_to(self, message_id: str) -> list[Message]:
        """The messages from the top down to `message_id`, whatever is selected."""
        path: list[Message] = []
        seen: set[str] = set()
        node: Message | None = self.messages[message_id]
        while node is not None and node.id not in seen:
            seen.add(node.id)
            path.append(node)
            node = self.messages.get(node.parent_id) if node.parent_id else None
        return path[::-1]

    def _pick_child(self, parent_id: str | None, kids) -> Message | None:
        chosen = self.messages.get(self.selected.get(parent_id or ROOT, ""))
        if chosen is not None and chosen.parent_id == parent_id:
            return chosen
        return kids[-1] if kids else None  # no valid choice recorded: show the newest

    # ---- changing the tree -----------------------------------------------------------------

    def add_message(self, parent_id: str | None, role: str, content: str, meta: dict | None = None) -> Message:
        """Add a child of `parent_id` (None: a top-level message) and make it the shown one.

        Regenerate: add another assistant reply under the same user message.
        Edit and resend: add a new user message under the old one's parent.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if parent_id is not None and parent_id not in self.messages:
            raise KeyError(parent_id)
        msg = Message(new_id(), role, content, time.time(), parent_id, dict(meta or {}))
        self.messages[msg.id] = msg
        self.select(msg.id)
        self.updated = msg.created
        return msg

    def append(self, role: str, content: str, meta: dict | None = None) -> Message:
        """Add a message after the last one of the active path."""
        path = self.active_path()
        return self.add_message(path[-1].id if path else None, role, content, meta)

    def select(self, message_id: str) -> None:
        """Show this message: it and all its ancestors become the selected children."""
        for node in self.path_to(message_id):
            self.selected[node.parent_id or ROOT] = node.id

    def update_content(self, message_id: str, content: str, meta: dict | None = None) -> None:
        """Replace a message's text (e.g. while streaming); `meta` keys are merged into its meta."""
        msg = self.messages[message_id]
        msg.content = content
        if meta:
            msg.meta.update(meta)
        self.updated = time.time()

    def remove(self, message_id: str) -> None:
        """Delete a message and everything below it (e.g. a reply that failed to start)."""
        self.messages[message_id]  # KeyError for an unknown id
        kids: dict[str | None, list[str]] = {}
        for m in self.messages.values():
            kids.setdefault(m.parent_id, []).append(m.id)
        doomed, todo = set(), [message_id]
        while todo:
            mid = todo.pop()
            if mid not in doomed:
                doomed.add(mid)
                todo += kids.get(mid, [])
        for mid in doomed:
            self.messages.pop(mid, None)
        self.selected = {k: v for k, v in self.selected.items() if k not in doomed and v not in doomed}
        self.updated = time.time()

    # ---- derived text ----------------------------------------------------------------------

    def to_messages_for_model(self, upto: str | None = None) -> list[dict]:
        """[{"role", "content"}] for the chat template: the system prompt (if set), then the
        active path, or the path down to `upto` (e.g. the user message to answer again). A user
        message sent with files or knowledge passages goes as the prompt made for it (meta "prompt":
        the sources' text, then the question), also in later turns."""
        path = self.path_to(upto) if upto else self.active_path()
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        out += [{"role": m.role, "content": _model_text(m)} for m in path]
        return out

    def title_from_first_message(self, max_len: int = 40) -> str:
        """A one-line title from the first user message, cut at a word near `max_len`; "" if none."""
        first = next((m for m in self.active_path() if m.role == "user" and m.content.strip()), None)
        if first is None:
            return ""
        text = " ".join(first.content.split())
        if len(text) <= max_len:
            return text
        cut = text[: max_len - 1]
        space = cut.rfind(" ")
        if space > max_len // 2:  # prefer a word boundary unless it throws away too much
            cut = cut[:space]
        return cut.rstrip(" ,.;:-") + "…"

    # ---- (de)serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "created": self.created, "updated": self.updated,
                "system_prompt": self.system_prompt,
                "messages": [m.to_dict() for m in self.messages.values()], "selected": dict(self.selected)}

    @classmethod
    def from_dict(cls, d: object) -> "Chat":
        """Rebuild a chat, raising ChatFormatError if the message tree is unusable.

        Structure (messages, ids, roles, texts, parents) must be right or the chat is refused,
        so that a broken file is kept aside rather than half-loaded and then saved over.
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
            msg = _message_from_dict(item, i)
            if msg.id in messages:
                raise ChatFormatError(f"message id {msg.id!r} appears twice")
            messages[msg.id] = msg
        _check_tree(messages)
        chat = cls(
            id=d["id"] if isinstance(d.get("id"), str) and d["id"] else new_id(),
            title=_str_or(d.get("title"), ""),
            created=_time_or(d.get("created"), 0.0),
            updated=_time_or(d.get("updated"), 0.0),
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


def _time_or(value: object, default: float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0 <= value <= _MAX_TIME:
        return float(value)
    return default


def _message_from_dict(item: object, i: int) -> Message:
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
    meta = meta if isinstance(meta, dict) else {}
    if token_pack.PACKED_KEY in meta:  # an export's packed records (format 2)
        records = token_pack.from_text(meta.pop(token_pack.PACKED_KEY))
        if records:
            meta["token_data"] = records
    elif "token_data" in meta:  # the stored dicts, typed (what is not a record is left out)
        meta["token_data"] = records_from_dicts(meta["token_data"])
    return Message(mid, role, content, _time_or(item.get("created"), 0.0), parent, meta)


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

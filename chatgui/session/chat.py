"""The chat: a tree of messages, so answers can be regenerated and questions edited.

Every message points at its parent. Siblings are alternatives: several assistant replies to
one user message (regenerate) or several versions of a user message (edit and resend). For
each parent, `Chat.selected` remembers which child is shown; following those choices from the
top gives the conversation on screen (`active_path`). Nothing is ever lost by branching.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from chatgui.common.prompt import PromptMessage
from chatgui.common.records import ReplyMeta, TokenRecord, records_from_dicts

from .history import model_messages
from .message import Message, new_id
from .meta import MessageMeta, meta_from_dict
from .roles import ROLES, Role

ROOT = ""  # key in Chat.selected for the choice among top-level messages


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
        if message is None or not isinstance(message.meta, ReplyMeta):
            return []
        data = message.meta.token_data
        if data is None and self.token_loader is not None:
            return self.token_loader(message_id) or []
        if not isinstance(data, list):
            return []
        if any(type(t) is not TokenRecord for t in data):
            data = message.meta.token_data = records_from_dicts(data)
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

    def add_message(self, parent_id: str | None, role: str, content: str,
                    meta: MessageMeta | dict | None = None) -> Message:
        """Add a child of `parent_id` (None: a top-level message) and make it the shown one.
        `meta`: the typed meta of its role (ReplyMeta for a reply, else UserMeta), or the stored
        form (a dict, as an import reads it).

        Regenerate: add another assistant reply under the same user message.
        Edit and resend: add a new user message under the old one's parent.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if parent_id is not None and parent_id not in self.messages:
            raise KeyError(parent_id)
        typed = meta_from_dict(role, meta or {}) if isinstance(meta, dict) or meta is None else meta
        msg = Message(new_id(), Role(role), content, time.time(), parent_id, typed)
        self.messages[msg.id] = msg
        self.select(msg.id)
        self.updated = msg.created
        return msg

    def append(self, role: str, content: str, meta: MessageMeta | dict | None = None) -> Message:
        """Add a message after the last one of the active path."""
        path = self.active_path()
        return self.add_message(path[-1].id if path else None, role, content, meta)

    def select(self, message_id: str) -> None:
        """Show this message: it and all its ancestors become the selected children."""
        for node in self.path_to(message_id):
            self.selected[node.parent_id or ROOT] = node.id

    def update_content(self, message_id: str, content: str, meta: ReplyMeta | None = None) -> None:
        """Replace a message's text (e.g. while streaming); a reply's `meta` fields that are set
        are merged into its meta."""
        msg = self.messages[message_id]
        msg.content = content
        if meta is not None:
            msg.reply_meta.merge(meta)
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

    def to_messages_for_model(self, upto: str | None = None, tool_turns: bool = True) -> list[PromptMessage]:
        """What the model is sent (session/history.py model_messages): the system prompt (if set),
        then the active path, or the path down to `upto` (e.g. the user message to answer again),
        earlier tool calls and their results included unless tool_turns is False."""
        path = self.path_to(upto) if upto else self.active_path()
        return model_messages(self.system_prompt, path, tool_turns)

    def title_from_first_message(self, max_len: int = 40) -> str:
        """A one-line title from the first user message, cut at a word near `max_len`; "" if none."""
        first = next((m for m in self.active_path() if m.role == Role.USER and m.content.strip()), None)
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

    # ---- (de)serialisation: the stored form (session/stored.py) -----------------------------

    def to_dict(self) -> dict:
        from .stored import chat_to_dict
        return chat_to_dict(self)

    @classmethod
    def from_dict(cls, d: object) -> "Chat":
        """Rebuild a chat from its stored form; ChatFormatError if the message tree is unusable
        (session/stored.py chat_from_dict)."""
        from .stored import chat_from_dict
        return chat_from_dict(d)

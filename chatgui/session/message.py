"""One message of a chat: who wrote it, its text, when, its place in the tree, and its typed meta
(a reply's ReplyMeta, a question's UserMeta: session/meta.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chatgui.common.records import Attachment, ReplyMeta
from chatgui.common.tools import ToolCall, ToolResult

from .meta import MessageMeta, UserMeta, meta_from_dict
from .roles import ROLES, Role

__all__ = ["ROLES", "Message", "Part", "Role", "TextPart", "new_id"]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TextPart:
    text: str


# A message's content, part by part: its text, the files attached to a question, the calls a reply
# made and what they gave back (the shapes of common/tools.py, as engine/tool_loop.py makes them).
Part = TextPart | Attachment | ToolCall | ToolResult


@dataclass
class Message:
    id: str
    role: Role
    content: str              # the text as shown (a reply: what the user saw stream)
    created: float            # epoch seconds
    parent_id: str | None = None
    meta: MessageMeta = field(default_factory=UserMeta)   # ReplyMeta for an assistant's reply, else UserMeta

    def __post_init__(self) -> None:
        # (type checks, not isinstance: the store builds every message of a chat at each save)
        if type(self.role) is not Role:
            self.role = Role(self.role)   # ValueError for a role that is not one
        if type(self.meta) is dict:      # the stored form
            self.meta = meta_from_dict(self.role, self.meta)
        elif (type(self.meta) is ReplyMeta) != (self.role is Role.ASSISTANT):   # e.g. the default
            self.meta = meta_from_dict(self.role, self.meta.to_dict())

    @property
    def reply_meta(self) -> ReplyMeta:
        """An assistant message's meta (TypeError for another role's: a caller's mistake)."""
        if not isinstance(self.meta, ReplyMeta):
            raise TypeError(f"a {self.role} message has no reply meta")
        return self.meta

    @property
    def user_meta(self) -> UserMeta:
        """A user or system message's meta (TypeError for a reply's)."""
        if not isinstance(self.meta, UserMeta):
            raise TypeError(f"a {self.role} message has no user meta")
        return self.meta

    @property
    def parts(self) -> list[Part]:
        """The content part by part: a question's text and attached files; a reply's calls, each
        followed by its result when one came back, then its text."""
        meta = self.meta
        if isinstance(meta, ReplyMeta):
            out: list[Part] = []
            for call, result in tool_exchanges(meta):
                out.append(call)
                if result is not None:
                    out.append(result)
            return [*out, TextPart(self.content)]
        return [TextPart(self.content), *meta.attachments]


def tool_exchanges(meta: ReplyMeta) -> list[tuple[ToolCall, ToolResult | None]]:
    """A reply's calls in order, each with its result (None: none came back, e.g. stopped)."""
    results = {r.call_id: r for r in meta.tool_results or ()}
    return [(call, results.get(call.id)) for call in meta.tool_calls or ()]

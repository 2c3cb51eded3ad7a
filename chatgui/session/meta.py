"""What a message carries besides its text, typed: a reply's ReplyMeta (common/records.py) and a
question's UserMeta. The stored form of both is a plain dict (`to_dict` / `from_dict`); keys this
version does not know are kept in `extra` and written back."""
from __future__ import annotations

from dataclasses import dataclass, field

from chatgui.common.records import Attachment, ReplyMeta, attachments_from_meta, shallow_copy

from .roles import Role


@dataclass
class UserMeta:
    """What a user (or system) message carries: the files attached to it (with their text, so the
    chat stays whole when a file moves), the prompt made for it from those files and the knowledge
    folders (what the model is sent instead of the bare question, in later turns too), the sources
    numbered in that prompt, and whether the chat's "Use knowledge folders" was on when it was sent."""
    prompt: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)   # documents.Source.to_dict(), numbered as in the prompt
    knowledge: bool | None = None
    extra: dict = field(default_factory=dict)           # keys this version does not know, kept as they are

    def to_dict(self) -> dict:
        d: dict = {}
        if self.prompt is not None:
            d["prompt"] = self.prompt
        if self.attachments:
            d["attachments"] = [a.to_dict() for a in self.attachments]
        if self.sources:
            d["sources"] = list(self.sources)
        if self.knowledge is not None:
            d["knowledge"] = self.knowledge
        return {**self.extra, **d}

    def copy(self) -> "UserMeta":
        """A shallow copy (its lists shared), quick: a save snapshots every message's meta."""
        return shallow_copy(self)

    @classmethod
    def from_dict(cls, d: object) -> "UserMeta":
        """From the stored form; a known key of the wrong type stays in `extra` as it was."""
        extra = dict(d) if isinstance(d, dict) else {}
        meta = cls()
        if isinstance(extra.get("prompt"), str):
            meta.prompt = extra.pop("prompt")
        if isinstance(extra.get("attachments"), list):
            meta.attachments = attachments_from_meta({"attachments": extra.pop("attachments")})
        if isinstance(extra.get("sources"), list):
            meta.sources = [s for s in extra.pop("sources") if isinstance(s, dict)]
        if isinstance(extra.get("knowledge"), bool):
            meta.knowledge = extra.pop("knowledge")
        meta.extra = extra
        return meta


MessageMeta = ReplyMeta | UserMeta


def meta_from_dict(role: str, d: object) -> MessageMeta:
    """A message's typed meta from its stored dict: a ReplyMeta for an assistant's, else UserMeta."""
    data = d if isinstance(d, dict) else {}
    return ReplyMeta.from_dict(data) if role == Role.ASSISTANT else UserMeta.from_dict(data)

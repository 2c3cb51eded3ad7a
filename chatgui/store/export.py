"""Turning a chat into text for the user: Markdown (what is on screen) or JSON (everything)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from chatgui.common.records import ReplyMeta, ValueEnum

from . import token_pack
from chatgui.session import Chat, Role, UserMeta, tool_exchanges

# Version of the chat file format. 1: the one-file-per-chat layout before the database, and
# exports without token records. 2: a reply's token records may be packed (PACKED_KEY).
SCHEMA = 2
PACKED_KEY = token_pack.PACKED_KEY   # in a message's meta: base64 of token_pack.pack(records)


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def export_markdown(chat: Chat) -> str:
    """The conversation as shown (active path), with the system prompt and model names."""
    title = chat.title or chat.title_from_first_message() or "Chat"
    lines = [f"# {title}", "", f"*{_date(chat.created)}*", ""]
    if chat.system_prompt:
        lines += ["**System prompt:**", ""]
        lines += [f"> {line}" if line else ">" for line in chat.system_prompt.splitlines()]
        lines.append("")
    for msg in chat.active_path():
        heading = msg.role.value.capitalize()
        meta = msg.meta
        if isinstance(meta, ReplyMeta) and meta.model:
            heading += f" ({meta.model})"
        lines += [f"## {heading}", ""]
        if isinstance(meta, ReplyMeta):
            lines += _tool_calls_markdown(meta)
        lines += [msg.content.rstrip(), ""]
        attached = meta.attachments if isinstance(meta, UserMeta) and msg.role == Role.USER else []
        if attached:   # the files' names: their text is in the JSON export, not on screen
            lines += [f"*Attached: {', '.join(a.name for a in attached)}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _tool_calls_markdown(meta: ReplyMeta) -> list[str]:
    """A reply's tool calls (issue 31): each call's arguments and what it gave back."""
    lines = []
    for call, result in tool_exchanges(meta):
        state = " (failed)" if result is not None and result.is_error else ""
        lines += [f"**Tool call: `{call.name}`**{state}", "", "```json",
                  json.dumps(call.arguments, ensure_ascii=False, indent=2), "```", ""]
        if result is not None:
            lines += ["Result:", "", "```", result.content.replace("```", "ʼʼʼ"), "```", ""]
    return lines


INDENT_UP_TO = 1024 * 1024  # characters; a bigger chat is written compactly


def export_json(chat: Chat, packed: dict[str, bytes] | None = None) -> str:
    """The whole chat (every branch and all metadata), readable by import. Indented for reading
    when small; compact when big, where indenting only adds size and time.

    A reply's token records are written packed (PACKED_KEY: the database's own blob, base64),
    not as one JSON object per token, which made a long chat's export many times larger and
    slower to write and read back. `packed`: message id -> blob already packed (read from the
    database), used instead of the message's records. Without token records the document is
    format 1, which older versions read too."""
    packed = packed or {}
    messages: list[dict[str, Any]] = []
    for m in chat.messages.values():
        blob = packed.get(m.id)
        records = m.meta.token_data if isinstance(m.meta, ReplyMeta) else None
        if blob is None and isinstance(records, list) and records:
            blob = token_pack.pack(records)
        meta = {k: v for k, v in m.meta.to_dict().items() if k not in ("token_data", PACKED_KEY)}
        if blob is not None:
            meta[PACKED_KEY] = token_pack.to_text(blob)
        messages.append({"id": m.id, "role": m.role.value, "content": m.content, "created": m.created,
                         "parent_id": m.parent_id, "meta": meta})
    schema = SCHEMA if any(PACKED_KEY in d["meta"] for d in messages) else 1
    doc = {"schema": schema, "id": chat.id, "title": chat.title, "created": chat.created, "updated": chat.updated,
           "system_prompt": chat.system_prompt, "messages": messages,
           "selected": dict(chat.selected)}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(doc, ensure_ascii=False, indent=2) if len(text) <= INDENT_UP_TO else text


class ExportFormat(ValueEnum):
    MARKDOWN = "markdown"
    JSON = "json"


@dataclass(frozen=True)
class ExportSpec:
    """How a format is offered (File > Export as <name>, with its accelerator) and written.
    write(chat, packed token records by message id) -> the file's text; `packed` is read from
    the database only for a format that uses the token records."""
    name: str
    suffix: str
    uses_token_records: bool
    write: Callable[[Chat, dict[str, bytes]], str]


# Every export format: adding one is its member above, its entry here and its writer.
EXPORT_FORMATS: dict[ExportFormat, ExportSpec] = {
    ExportFormat.MARKDOWN: ExportSpec("&Markdown", ".md", False, lambda chat, _packed: export_markdown(chat)),
    ExportFormat.JSON: ExportSpec("&JSON", ".json", True, export_json),
}


def export_format(kind: ExportFormat | str) -> ExportFormat:
    """The format named `kind`; ValueError naming the known ones if there is none (never a
    silent fallback to another format)."""
    try:
        return ExportFormat(kind)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise ValueError(f"Unknown export format {kind!r} (known: {known}).") from None

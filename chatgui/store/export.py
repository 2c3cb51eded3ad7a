"""Turning a chat into text for the user: Markdown (what is on screen) or JSON (everything)."""
from __future__ import annotations

import json
import time

from .chat import Chat

SCHEMA = 1  # version of the chat file format; export_json writes the same format


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
        heading = msg.role.capitalize()
        model = msg.meta.get("model") if msg.role == "assistant" else None
        if isinstance(model, str) and model:
            heading += f" ({model})"
        lines += [f"## {heading}", "", msg.content.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


INDENT_UP_TO = 1024 * 1024  # characters; a bigger chat (token records) is written compactly


def export_json(chat: Chat) -> str:
    """The whole chat (every branch and all metadata), readable by import. Indented for reading
    when small; compact when big, where indenting only triples the size and the time."""
    doc = {"schema": SCHEMA, **chat.to_dict()}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(doc, ensure_ascii=False, indent=2) if len(text) <= INDENT_UP_TO else text

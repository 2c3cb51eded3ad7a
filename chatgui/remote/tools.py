"""Tool calling through an OpenAI-compatible server: the tools and earlier calls as the API wants
them, the streamed `tool_calls` deltas put together, and RemoteModel's round of the tool loop
(engine/tool_loop.run_tool_loop asks a backend for `reply_with_tools` where it has one). The
server formats and parses the calls; what comes back is checked here as a local call is: a known
tool, arguments that parse as a JSON object and match the tool's schema. No Qt."""
from __future__ import annotations

import json

from chatgui.common.tools import ToolCall, ToolSpec, checked_call, new_call_id


def wire_tool_choice(choice):
    """tool_choice for the API: "auto", "none", "required", or a tool's name as OpenAI names one."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": str(choice)}}


class CallParts:
    """The calls of one reply as they arrive: streamed deltas (by index: an id and name first,
    then pieces of the arguments) or a whole message's list."""

    def __init__(self):
        self.parts: dict[int, dict] = {}

    def take(self, entries) -> None:
        if not isinstance(entries, list):
            raise TypeError("tool_calls is not a list")
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise TypeError("a tool call is not an object")
            index = entry.get("index", position)
            if not isinstance(index, int):
                raise TypeError("a tool call's index is not a number")
            part = self.parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            f = entry.get("function") or {}
            if entry.get("id"):
                part["id"] = str(entry["id"])
            if f.get("name"):
                part["name"] += str(f["name"]) if part["name"] != f["name"] else ""
            args = f.get("arguments")
            if isinstance(args, dict):           # (some servers send the object itself)
                args = json.dumps(args, ensure_ascii=False)
            part["arguments"] += args or ""

    def calls(self, tools: list[ToolSpec]) -> list[ToolCall]:
        by_name = {t.name: t for t in tools}
        return [_checked(self.parts[k], by_name) for k in sorted(self.parts)]


def _checked(part: dict, by_name: dict[str, ToolSpec]) -> ToolCall:
    return checked_call(part["id"] or new_call_id(), part["name"], part["arguments"], by_name)

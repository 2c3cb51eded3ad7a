"""Server-sent events: turn the lines of a text/event-stream body into (event, data) pairs.

Follows the WHATWG rules that OpenAI-compatible servers rely on: `data:` lines accumulate
(joined by newlines) until a blank line dispatches the event, `:` lines are comments (keep-alive
pings), unknown fields are ignored.
"""
from __future__ import annotations

from typing import AsyncIterator

MAX_EVENT_CHARS = 4 * 1024 * 1024   # a hostile or broken server must not eat all memory


class SSEError(ValueError):
    pass


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    event, data, size = "", [], 0
    async for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data, size = "", [], 0
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            size += len(value)
            if size > MAX_EVENT_CHARS:
                raise SSEError(f"an event is larger than {MAX_EVENT_CHARS} characters")
            data.append(value)
        elif field == "event":
            event = value
    if data:    # a last event with no blank line after it
        yield event or "message", "\n".join(data)

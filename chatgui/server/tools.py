"""OpenAI's tool calling on /v1/chat/completions: `tools` and `tool_choice` in, `tool_calls` out.

Requests: the tools (functions with JSON-schema parameters) and tool_choice ("auto", "none",
"required" or {"type": "function", "function": {"name": ...}}); the messages a tool loop sends
back (an assistant's tool_calls, `tool` results) are read by common/prompt.py. Replies: the
model's calls, parsed from its own format (engine/tool_calls.py) with the arguments held to their
schemas while generated, as `tool_calls` with finish_reason "tool_calls"; streamed, the text
before the calls streams as usual, then each call as OpenAI streams it: a delta with its index,
id, type and name (and empty arguments), then deltas of `arguments` text as the model writes
them (engine/tool_stream.py).
"""
from __future__ import annotations

from chatgui.common.tools import ToolCall, ToolSpec

MAX_TOOLS = 128
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _bad(message: str, param: str):
    from .protocol import ApiError
    return ApiError(400, message, param=param, code="invalid_value")


def parse_tools(body: dict) -> tuple[list[ToolSpec] | None, object, bool]:
    """(tools or None, tool_choice, parallel_tool_calls) of a chat request; 400s name the field."""
    raw, choice = body.get("tools"), body.get("tool_choice")
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise _bad("'parallel_tool_calls' must be true or false.", "parallel_tool_calls")
    if raw is None or raw == []:
        if choice not in (None, "none", "auto"):
            raise _bad("'tool_choice' needs 'tools'.", "tool_choice")
        return None, "none", parallel
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise _bad(f"'tools' must be a list of at most {MAX_TOOLS} function tools.", "tools")
    tools, names = [], set()
    for i, t in enumerate(raw):
        f = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(f, dict):
            raise _bad(f"tools[{i}] must be {{\"type\": \"function\", \"function\": {{...}}}}.", "tools")
        name = f.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not set(name) <= NAME_CHARS:
            raise _bad(f"tools[{i}].function.name must be 1-64 letters, digits, '_' or '-'.", "tools")
        if name in names:
            raise _bad(f"tools[{i}]: the name {name!r} is used twice.", "tools")
        params = f.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict) or params.get("type", "object") != "object":
            raise _bad(f"tools[{i}].function.parameters must be a JSON schema of an object.", "tools")
        description = f.get("description") or ""
        if not isinstance(description, str):
            raise _bad(f"tools[{i}].function.description must be a string.", "tools")
        names.add(name)
        tools.append(ToolSpec(name, description, params or {"type": "object", "properties": {}}, "client"))
    if choice is None:
        choice = "auto"
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if name not in names:
            raise _bad("'tool_choice' must name one of the tools: {\"type\": \"function\", \"function\": "
                       "{\"name\": ...}}.", "tool_choice")
        choice = name
    elif choice not in ("auto", "none", "required"):
        raise _bad("'tool_choice' must be \"auto\", \"none\", \"required\" or a named function.", "tool_choice")
    return tools, choice, parallel


def constraint_for(model, tools: list[ToolSpec], choice, parallel: bool):
    """The engine's tool constraint for a request (None for tool_choice "none"), or a 400."""
    from chatgui.engine.tool_calls import tool_constraint

    from .protocol import ApiError
    try:
        return tool_constraint(model, tools, choice, parallel=parallel)
    except ValueError as e:     # engine.constrained.ConstraintError: a schema llguidance cannot use
        raise ApiError(400, f"The tools' parameters cannot be used: {e}", param="tools",
                       code="invalid_schema") from None


class ToolReplyFilter:
    """One choice's reply: feed() the text pieces to learn what to stream as content; calls()
    at the end parses the calls from the reply's tokens."""

    def __init__(self, model, tools: list[ToolSpec], constraint):
        from chatgui.engine.tool_calls import CallTextFilter, detect_format
        from chatgui.engine.tool_stream import CallStreamer

        self.model, self.tools = model, tools
        self.fmt = detect_format(model.template.source)
        self.filter = CallTextFilter(self.fmt, constraint)
        self.streamer = CallStreamer(self.fmt)

    def feed(self, text: str) -> str:
        return self.filter.feed(text)

    def feed_token(self, token_id: int) -> list[dict]:
        """The `tool_calls` delta entries this token completes (OpenAI's streaming shape)."""
        from chatgui.engine.tool_stream import CallStart

        out = []
        for d in self.streamer.feed(self.model.token_bytes(token_id)):
            if isinstance(d, CallStart):
                out.append({"index": d.index, "id": d.id, "type": "function",
                            "function": {"name": d.name, "arguments": ""}})
            else:
                out.append({"index": d.index, "function": {"arguments": d.text}})
        return out

    def finish(self, gen) -> tuple[str, list[ToolCall]]:
        """(text still to stream, the calls). A call that does not parse (cut off by max_tokens)
        is not sent as a call: its text is, so nothing the model wrote is lost."""
        from chatgui.engine.tool_calls import split_tool_calls

        from dataclasses import replace

        tail = self.filter.flush()
        _content, calls = split_tool_calls(self.model.detokenize(gen.token_ids), self.fmt, self.tools)
        if calls and all(c.error is None for c in calls):
            ids = self.streamer.ids     # the ids already streamed stay theirs
            return tail, [replace(c, id=ids[k]) if k < len(ids) else c for k, c in enumerate(calls)]
        # no call, or a broken one: the text not streamed yet goes out (held back, or after the
        # marker, or kept back by the engine as a possible stop string)
        shown = self.filter.shown
        return tail + (gen.text[len(shown):] if gen.text.startswith(shown) else ""), []


def tool_calls_delta(calls: list[ToolCall], streamed: int = 0) -> list[dict]:
    """Whole calls as one delta, but for the first `streamed`, already sent piece by piece."""
    return [{"index": k, **c.to_openai()} for k, c in enumerate(calls) if k >= streamed]

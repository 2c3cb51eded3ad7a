"""Typed records of tool use: a tool the model may call, one call it made, and the call's result.

Plain data with `to_dict` / `from_dict` (how a chat stores them) and the OpenAI wire shapes
(`to_openai`), so the engine, the server, the MCP client and the window pass the same objects.
No Qt, no torch.
"""
from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field

_ID_ALPHABET = string.ascii_letters + string.digits


def new_call_id(length: int = 9) -> str:
    """A call id. Nine letters and digits: Mistral's templates refuse any other length."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call. `parameters` is a JSON schema for its arguments (an object);
    `source` says who runs it: "builtin", "mcp:<server>" or "client" (the API's caller)."""
    name: str
    description: str = ""
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})
    source: str = "client"

    def to_openai(self) -> dict:
        """The form chat templates and the OpenAI API know: {"type": "function", "function": {...}}."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "ToolSpec":
        return cls(str(d["name"]), str(d.get("description") or ""),
                   dict(d.get("parameters") or {"type": "object", "properties": {}}), str(d.get("source") or "client"))

    @classmethod
    def from_openai(cls, d: dict, source: str = "client") -> "ToolSpec":
        f = d["function"]
        return cls(str(f["name"]), str(f.get("description") or ""),
                   dict(f.get("parameters") or {"type": "object", "properties": {}}), source)


@dataclass(frozen=True)
class ToolCall:
    """One call the model wrote. `arguments` is the parsed object; `error` says why the call could
    not be used (unknown tool, arguments that do not parse or match the schema), None when fine."""
    id: str
    name: str
    arguments: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)

    def to_openai(self) -> dict:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json}}

    def to_dict(self) -> dict:
        d = {"id": self.id, "name": self.name, "arguments": self.arguments}
        if self.error:
            d["error"] = self.error
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ToolCall":
        return cls(str(d["id"]), str(d["name"]), dict(d.get("arguments") or {}), d.get("error"))


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back, as the model will read it (text). `is_error`: the call failed or
    was refused (the text says why, plainly); `seconds`: how long it ran."""
    call_id: str
    name: str
    content: str
    is_error: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"call_id": self.call_id, "name": self.name, "content": self.content, "is_error": self.is_error,
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> "ToolResult":
        return cls(str(d["call_id"]), str(d["name"]), str(d.get("content") or ""), bool(d.get("is_error")),
                   float(d.get("seconds") or 0.0))


def schema_problem(value, schema: dict) -> str | None:
    """Why value does not match schema (jsonschema's message), or None."""
    import jsonschema

    try:
        jsonschema.validate(value, schema or {})
    except jsonschema.ValidationError as e:
        return f"the arguments do not match the tool's schema: {e.message}"
    except jsonschema.SchemaError as e:
        return f"the tool's schema is invalid: {e.message}"
    return None


def checked_call(call_id: str, name: str, args, by_name: dict[str, ToolSpec]) -> ToolCall:
    """A call as the model wrote it (arguments as JSON text or already read), with `error` set
    when its arguments are not a JSON object, its tool is unknown or the schema refuses them."""
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return ToolCall(call_id, name, {}, "the arguments are not valid JSON")
    if not isinstance(args, dict):
        return ToolCall(call_id, name, {}, "the arguments are not a JSON object")
    spec = by_name.get(name)
    if spec is None:
        return ToolCall(call_id, name, args, f"there is no tool named {name!r}")
    return ToolCall(call_id, name, args, schema_problem(args, spec.parameters))

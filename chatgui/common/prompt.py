"""What a model is sent: one message of a conversation as a typed record, PromptMessage.

The session builds these from a chat (session/history.py), the server parses them out of a
request, the engine renders them and the remote client sends them; none of them passes dicts.
There are exactly two conversions, at the edges:

- `to_template()`: the dict a Jinja chat template iterates over (a call's arguments as an
  object, which templates index and loop over), made only where a template is rendered
  (engine/chat_template.py);
- `to_wire()` / `from_wire()`: the OpenAI API's form (a call's arguments as JSON text).
  `from_wire` checks what a client sent and says plainly what is wrong (PromptFormatError, whose
  text the server answers with a 400).

No Qt, no torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .records import ValueEnum
from .tools import ToolCall, ToolResult, new_call_id


class Role(ValueEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"   # only in what the model is sent (a tool's result); a chat keeps results in the reply's meta


# The roles a request may give a plain message, and what each is here ("developer" is OpenAI's
# newer name for the system message); `tool` and an assistant's calls are read apart.
WIRE_ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}


class PromptFormatError(ValueError):
    """A message in the API's form that cannot be read; the text names the message and what is wrong."""


@dataclass(frozen=True)
class PromptMessage:
    """One message a model is sent. `tool_calls`: an assistant's calls (their arguments parsed);
    `tool_call_id` and `name`: a `tool` result's call and tool ("" elsewhere)."""
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if type(self.role) is not Role:
            object.__setattr__(self, "role", Role(self.role))   # ValueError for a role that is not one
        if type(self.tool_calls) is not tuple:
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @classmethod
    def system(cls, content: str) -> "PromptMessage":
        return cls(Role.SYSTEM, content)

    @classmethod
    def user(cls, content: str) -> "PromptMessage":
        return cls(Role.USER, content)

    @classmethod
    def assistant(cls, content: str, tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()) -> "PromptMessage":
        return cls(Role.ASSISTANT, content, tuple(tool_calls))

    @classmethod
    def tool_result(cls, result: ToolResult) -> "PromptMessage":
        """The `tool` message that hands a call's result back to the model."""
        return cls(Role.TOOL, result.content, tool_call_id=result.call_id, name=result.name)

    def text_only(self) -> "PromptMessage":
        """The message as its role and text (for a prompt that takes no tool turns)."""
        return self if not (self.tool_calls or self.tool_call_id or self.name) else PromptMessage(self.role,
                                                                                                  self.content)

    def with_content(self, content: str) -> "PromptMessage":
        return replace(self, content=content)

    # -- the two edges ----------------------------------------------------------------------
    def to_template(self) -> dict:
        """What a chat template reads: an assistant's calls as {"id", "type", "function": {"name",
        "arguments": object}}, a tool result with its call's id and tool's name."""
        if self.role is Role.ASSISTANT and self.tool_calls:
            calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                     for c in self.tool_calls]
            return {"role": self.role.value, "content": self.content, "tool_calls": calls}
        if self.role is Role.TOOL:
            return {"role": self.role.value, "content": self.content, "tool_call_id": self.tool_call_id,
                    "name": self.name}
        return {"role": self.role.value, "content": self.content}

    def to_wire(self) -> dict:
        """The OpenAI API's form: a call's arguments as JSON text; a tool result with tool_call_id."""
        out: dict = {"role": self.role.value, "content": self.content}
        if self.role is Role.ASSISTANT and self.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        elif self.role is Role.TOOL:
            out["tool_call_id"] = self.tool_call_id
            if self.name:
                out["name"] = self.name
        return out

    @classmethod
    def from_wire(cls, m: object, where: str = "the message") -> "PromptMessage":
        """A message as a client sent it (the OpenAI API's form); PromptFormatError names `where`
        and what is wrong. A call without an id gets one (a template may write it)."""
        if not isinstance(m, dict):
            raise PromptFormatError(f"{where} must be an object with 'role' and 'content'.")
        role = m.get("role")
        if role == "tool" or role == "assistant" and m.get("tool_calls"):
            return _tool_message(m, where)
        if role not in WIRE_ROLES:
            raise PromptFormatError(f"{where}: role {role!r} is not supported (use system, user or assistant).")
        return cls(WIRE_ROLES[role], _content_text(m.get("content"), where))


def checked_unicode(text: str, where: str) -> str:
    """text, if it is valid Unicode. JSON's \\ud800 escapes decode to lone surrogates, which no
    tokenizer can encode (it failed with a 500 at the server)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise PromptFormatError(f"{where} holds a lone surrogate ({text[e.start]!r} at character {e.start}): "
                                "send valid Unicode (a surrogate must come in a pair).") from None
    return text


def _content_text(content: object, where: str) -> str:
    """Message content: a string, or a list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return checked_unicode(content, where)
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise PromptFormatError(f"{where}: only text content is supported.")
            texts.append(checked_unicode(part["text"], where))
        return "".join(texts)
    raise PromptFormatError(f"{where}: 'content' must be a string or a list of text parts.")


def _tool_message(m: dict, where: str) -> PromptMessage:
    """A `tool` result, or an assistant message with tool_calls."""
    content = m.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise PromptFormatError(f"{where}: 'content' must be a string.")
    text = checked_unicode(content or "", where)
    if m.get("role") == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise PromptFormatError(f"{where}: a tool message needs 'tool_call_id'.")
        return PromptMessage(Role.TOOL, text, tool_call_id=call_id, name=str(m.get("name") or ""))
    calls = m.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        raise PromptFormatError(f"{where}: 'tool_calls' must be a non-empty list.")
    out = []
    for c in calls:
        f = c.get("function") if isinstance(c, dict) else None
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise PromptFormatError(f"{where}: each tool call needs a function name.")
        args = f.get("arguments") or "{}"
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except (ValueError, RecursionError):
            raise PromptFormatError(f"{where}: a tool call's 'arguments' is not valid JSON.") from None
        if not isinstance(args, dict):
            raise PromptFormatError(f"{where}: a tool call's 'arguments' must be a JSON object.")
        out.append(ToolCall(str(c.get("id") or "") or new_call_id(), f["name"], args))
    return PromptMessage(Role.ASSISTANT, text, tuple(out))

"""What the model is sent for a chat: its messages in the form chat templates and the OpenAI API
take, earlier tool calls and their results included.

A reply that called tools is kept as one message (its text as the user saw it, the calls and
results in its meta). The model reads it as the turns the tool loop made: an assistant message
with `tool_calls` (arguments as an object, what templates iterate over), one `tool` message per
result, then the reply's text. So a second question still sees what the tools said (issue 31).
The rounds a reply took are not kept apart, so its calls are given back as one round; a call that
got no result (the reply was stopped first) is left out, as a template expects a result per call.
"""
from __future__ import annotations

from chatgui.common.records import ReplyMeta

from .message import Message, tool_exchanges
from .roles import Role


def model_text(message: Message) -> str:
    """A question sent with files or knowledge passages goes as the prompt made for it (the
    sources' text, then the question), also in later turns; anything else as its text."""
    if message.role == Role.USER:
        prompt = message.user_meta.prompt
        if prompt:
            return prompt
    return message.content


def model_messages(system_prompt: str | None, path: list[Message], tool_turns: bool = True) -> list[dict]:
    """[{"role", "content", ...}] for the chat template: the system prompt (if any), then `path`.
    tool_turns=False: the text only, for a backend that takes no tool messages (every reply as
    its text, as before the tool loop)."""
    out = [{"role": Role.SYSTEM.value, "content": system_prompt}] if system_prompt else []
    for m in path:
        if tool_turns and isinstance(m.meta, ReplyMeta) and m.meta.tool_calls:
            out += tool_turn_messages(m.meta)
        out.append({"role": m.role.value, "content": model_text(m)})
    return out


def tool_turn_messages(meta: ReplyMeta) -> list[dict]:
    """The assistant's calls and the `tool` results that answered them (those with a result)."""
    answered = [(call, result) for call, result in tool_exchanges(meta) if result is not None]
    if not answered:
        return []
    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
             for c, _r in answered]
    out = [{"role": Role.ASSISTANT.value, "content": "", "tool_calls": calls}]
    out += [{"role": Role.TOOL.value, "tool_call_id": c.id, "name": r.name, "content": r.content}
            for c, r in answered]
    return out

"""What the model is sent for a chat: its messages as common/prompt.py PromptMessages (which the
engine renders and the remote client sends), earlier tool calls and their results included.

A reply that called tools is kept as one message (its text as the user saw it, the calls and
results in its meta). The model reads it as the turns the tool loop made: an assistant message
with `tool_calls`, one `tool` message per result, then the reply's text. So a second question
still sees what the tools said (issue 31).
The rounds a reply took are not kept apart, so its calls are given back as one round; a call that
got no result (the reply was stopped first) is left out, as a template expects a result per call.
"""
from __future__ import annotations

from chatgui.common.prompt import PromptMessage
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


def model_messages(system_prompt: str | None, path: list[Message], tool_turns: bool = True) -> list[PromptMessage]:
    """What the model is sent: the system prompt (if any), then `path`. tool_turns=False: the
    text only, for a backend that takes no tool messages (every reply as its text, as before the
    tool loop)."""
    out = [PromptMessage.system(system_prompt)] if system_prompt else []
    for m in path:
        if tool_turns and isinstance(m.meta, ReplyMeta) and m.meta.tool_calls:
            out += tool_turn_messages(m.meta)
        out.append(PromptMessage(m.role, model_text(m)))
    return out


def tool_turn_messages(meta: ReplyMeta) -> list[PromptMessage]:
    """The assistant's calls and the `tool` results that answered them (those with a result)."""
    answered = [(call, result) for call, result in tool_exchanges(meta) if result is not None]
    if not answered:
        return []
    out = [PromptMessage.assistant("", [c for c, _r in answered])]
    out += [PromptMessage(Role.TOOL, r.content, tool_call_id=c.id, name=r.name) for c, r in answered]
    return out

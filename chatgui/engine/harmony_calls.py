"""gpt-oss's tool calls (the harmony format). No Qt, no torch.

gpt-oss calls a function by addressing a message to it on the commentary channel; the reply
(the prompt ends with "<|start|>assistant") reads, markers kept as text:

    <|channel|>analysis<|message|>…reasoning…<|end|><|start|>assistant<|channel|>commentary
        to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>

(`to=` may also stand before the channel: "<|start|>assistant to=functions.x<|channel|>commentary
json<|message|>…", as the template writes earlier calls). <|call|> is a stop token, so one reply
holds one call. The grammar begins at "to=functions." and allows one of the tools' names, the rest
of the header, and arguments that match that tool's schema (llguidance's %json); then only a stop.
"""
from __future__ import annotations

import json
from typing import Sequence

from chatgui.common.harmony import CHANNEL, END, MESSAGE, START, final_answer
from chatgui.common.prompt import PromptMessage, Role

OPENER = "to=functions."
CONSTRAIN = "<|constrain|>"


def header_start(text: str, at: int) -> int:
    """Where the header holding text[at:] (a "to=" or a channel name) begins: its <|start|> or
    <|channel|>, whichever opened it after the last message body."""
    body = text.rfind(MESSAGE, 0, at)
    opened = [p for p in (text.rfind(START, 0, at), text.rfind(CHANNEL, 0, at)) if p > body]
    return min(opened) if opened else at


def split_harmony_call(text: str):
    """(what the reply said to the user before the call, tool name, the arguments' JSON text, a
    problem or None), or None when the reply calls nothing."""
    at = text.rfind(OPENER)
    if at < 0:
        return None
    before = final_answer(text[:header_start(text, at)]).strip()
    pos = at + len(OPENER)
    end_name = pos
    while end_name < len(text) and (text[end_name].isalnum() or text[end_name] in "_-."):
        end_name += 1
    name = text[pos:end_name]
    body_at = text.find(MESSAGE, end_name)
    if body_at < 0:
        return before, name, "", "the reply ended inside the call's header"
    body = text[body_at + len(MESSAGE):]
    for stop in ("<|call|>", END, "<|return|>"):
        body = body.split(stop, 1)[0]
    return before, name, body.strip(), None


def call_grammar(tools, marker, forced: bool) -> str:
    """Lark for a harmony call region. marker(text) writes a marker (a special token by id where
    the vocabulary has one); forced: the reply starts with the call's header."""
    names = []
    rules = []
    for k, tool in enumerate(tools):
        params = tool.parameters if isinstance(tool.parameters, dict) and tool.parameters else {"type": "object"}
        schema = dict(params)
        schema["x-guidance"] = {"whitespace_flexible": False, "coerce_one_of": True}
        rules.append(f"args{k}: %json {json.dumps(schema)}\n")
        names.append(f"({json.dumps(tool.name)} head {marker(MESSAGE)} args{k})")
    head = f'" "? ({marker(CHANNEL)} "commentary" " "?)? {marker(CONSTRAIN)}? "json"?'
    lead = f'{marker(CHANNEL)} "commentary " ' if forced else ""
    return (f"start: {lead}{json.dumps(OPENER)} call\ncall: {' | '.join(names)}\nhead: {head}\n" + "".join(rules))


def harmony_messages(messages: Sequence[PromptMessage]) -> list[PromptMessage]:
    """Messages as gpt-oss's template reads them: it renders one call per assistant message and
    names each result after the call before it, so an assistant message with several calls
    becomes one message per call, each followed by its result."""
    out: list[PromptMessage] = []
    i = 0
    while i < len(messages):
        m = messages[i]
        calls = m.tool_calls if m.role is Role.ASSISTANT else ()
        if len(calls) < 2:
            out.append(m)
            i += 1
            continue
        results: dict[str, list[PromptMessage]] = {}
        j = i + 1
        while j < len(messages) and messages[j].role is Role.TOOL:
            results.setdefault(messages[j].tool_call_id, []).append(messages[j])
            j += 1
        loose = [r for k, rs in results.items() if k not in {c.id for c in calls} for r in rs]
        for n, call in enumerate(calls):
            out.append(PromptMessage.assistant(m.content if n == 0 else "", [call]))
            out.extend(results.pop(call.id, []))
        out.extend(loose)
        i = j
    return out

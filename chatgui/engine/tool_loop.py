"""The tool loop: the model calls, the calls run (with consent), their results go back as `tool`
messages, and the model continues, up to a limit of rounds. No Qt; the engine runs no tool
itself: `run` and `consent` are the caller's (chatgui.tools.ToolBox.call and consent_gate).

    turn = run_tool_loop(model, messages, box.specs, settings, run=box.call,
                         consent=box.consent_gate(policy, chat_id, ask), on_event=sink, cancel=flag)
    turn.messages    # the new messages: assistant (with tool_calls), tool results, the final answer

on_event(kind, value): ("text", piece) while the model writes text a user may see; ("call",
ToolCall) when a call is complete, before consent; ("result", ToolResult) when it has run or was
refused; ("round", n) when round n (from 1) begins.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.common.types import SamplingSettings

from .tool_calls import CallTextFilter, ToolFormat, detect_format, split_tool_calls, tool_constraint, tool_prompt_ids

DEFAULT_MAX_ROUNDS = 5
DENIED = "The user did not allow this call."


@dataclass
class ToolTurn:
    messages: list[dict] = field(default_factory=list)   # appended to the chat, in order
    calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    finish_reason: str = "stop"      # "stop", "length", "cancelled", "tool_limit" (calls left unrun)
    rounds: int = 0

    @property
    def text(self) -> str:
        """The final answer's text."""
        last = self.messages[-1] if self.messages else None
        return last["content"] if last and last["role"] == "assistant" and not last.get("tool_calls") else ""


def assistant_message(content: str, calls: list[ToolCall]) -> dict:
    msg = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = [c.to_openai() for c in calls]
    return msg


def generate_with_tools(model, messages: list[dict], tools: list[ToolSpec], settings: SamplingSettings,
                        tool_choice="auto", cancel=None, on_text: Callable[[str], None] | None = None,
                        fmt: ToolFormat | None = None, parallel: bool = True):
    """One reply that may call tools: (its text before any calls, the calls, the Generation)."""
    fmt = fmt or detect_format(model.template.source)
    usable = [] if tool_choice == "none" else tools
    ids, _dropped = tool_prompt_ids(model, messages, tools, fmt, settings.max_new_tokens)
    constraint = tool_constraint(model, usable, tool_choice, fmt, parallel) if usable else None
    stops = tuple(settings.stop) + tuple(getattr(model, "template_stops", ()))
    gen = model.generate(messages, settings.with_(stop=stops), cancel, prompt_ids=ids, constraint=constraint)
    shown = CallTextFilter(fmt, constraint)
    for event in gen:
        piece = shown.feed(event.text)
        if piece and on_text:
            on_text(piece)
    tail = shown.flush()
    if tail and on_text:
        on_text(tail)
    if not usable:
        return gen.text, [], gen
    content, calls = split_tool_calls(model.detokenize(gen.token_ids), fmt, usable)
    if not calls:
        content = gen.text
    return content, calls, gen


def run_tool_loop(model, messages: list[dict], tools: list[ToolSpec], settings: SamplingSettings, *,
                  run: Callable[..., ToolResult], consent: Callable[[ToolCall], bool],
                  on_event: Callable[[str, object], None] | None = None, cancel=None,
                  max_rounds: int = DEFAULT_MAX_ROUNDS, tool_choice="auto", fmt: ToolFormat | None = None,
                  parallel: bool = True) -> ToolTurn:
    """Reply to messages, calling tools until the model answers without one or max_rounds of
    calls have run. A forced tool_choice applies to the first round only; parallel: several
    calls in one reply may be made."""
    emit = on_event or (lambda kind, value: None)
    turn = ToolTurn()
    chat = list(messages)
    choice = tool_choice
    while True:
        turn.rounds += 1
        emit("round", turn.rounds)
        last_round = turn.rounds > max_rounds
        round_choice = "none" if last_round else choice
        if hasattr(model, "reply_with_tools"):     # a server (remote/client.py): it formats and parses the calls
            content, calls, gen = model.reply_with_tools(chat, tools, settings, round_choice, cancel,
                                                         lambda piece: emit("text", piece), parallel)
        else:
            content, calls, gen = generate_with_tools(model, chat, tools, settings, round_choice, cancel,
                                                      lambda piece: emit("text", piece), fmt, parallel)
        choice = "auto"
        reason = gen.stats.finish_reason
        if reason == "cancelled" or not calls:
            msg = assistant_message(content, [])
            turn.messages.append(msg)
            turn.finish_reason = "cancelled" if reason == "cancelled" else (
                "tool_limit" if last_round else ("length" if reason == "length" else "stop"))
            return turn
        msg = assistant_message(content, calls)
        chat.append(msg)
        turn.messages.append(msg)
        for call in calls:
            turn.calls.append(call)
            emit("call", call)
            if call.error:
                result = ToolResult(call.id, call.name, f"The call could not be used: {call.error}.", True)
            elif cancel is not None and cancel.is_set():
                result = ToolResult(call.id, call.name, "The call was stopped.", True)
            elif not consent(call):
                result = ToolResult(call.id, call.name, DENIED, True)
            else:
                result = run(call, cancel) if _takes_cancel(run) else run(call)
            turn.results.append(result)
            emit("result", result)
            tool_msg = result.to_message()
            chat.append(tool_msg)
            turn.messages.append(tool_msg)
        if cancel is not None and cancel.is_set():
            turn.finish_reason = "cancelled"
            return turn


def _takes_cancel(fn) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        return False

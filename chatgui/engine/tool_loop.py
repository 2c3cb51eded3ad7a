"""The tool loop: the model calls, the calls run (with consent), their results go back as `tool`
messages, and the model continues, up to a limit of rounds. No Qt; the engine runs no tool
itself: `run` and `consent` are the caller's (chatgui.tools.ToolBox.call and consent_gate).

    turn = run_tool_loop(model, messages, box.specs, settings, run=box.call,
                         consent=box.consent_gate(policy, chat_id, ask), on_event=sink, cancel=flag)
    turn.messages    # the new PromptMessages: assistant (with tool_calls), tool results, the final answer

on_event(kind, value): ("round", n) when round n (from 1) begins; ("generation", gen) when the
round's reply has begun (its `stats` hold the prompt's size: the prompt as rendered with the
tools); ("text", piece) while the model writes text a user may see; ("call", ToolCall) when a
call is complete, before consent; ("result", ToolResult) when it has run or was refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.records import FinishReason
from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.common.types import GenerationStats, SamplingSettings

from .tool_calls import CallTextFilter, ToolFormat, detect_format, split_tool_calls, tool_constraint, tool_prompt_ids

DEFAULT_MAX_ROUNDS = 5
DENIED = "The user did not allow this call."


@dataclass
class ToolTurn:
    messages: list[PromptMessage] = field(default_factory=list)   # appended to the chat, in order
    calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    finish_reason: FinishReason = FinishReason.STOP   # STOP, LENGTH, CANCELLED or TOOL_LIMIT (calls left unrun)
    rounds: int = 0
    round_stats: list[GenerationStats] = field(default_factory=list)   # each round's reply's

    @property
    def stats(self) -> GenerationStats:
        """The rounds' statistics as one reply's: the first round's prompt, seed, dropped turns and
        wait for the first token; the tokens of all; the speed over all the tokens decoded."""
        first = self.round_stats[0] if self.round_stats else GenerationStats()
        out = GenerationStats(prompt_tokens=first.prompt_tokens, dropped_messages=first.dropped_messages,
                              seed=first.seed, time_to_first_token=first.time_to_first_token,
                              finish_reason=self.finish_reason)
        timed = [s for s in self.round_stats if s.tokens_per_second > 0]
        seconds = sum((s.generated_tokens - 1) / s.tokens_per_second for s in timed)
        out.generated_tokens = sum(s.generated_tokens for s in self.round_stats)
        out.tokens_per_second = sum(s.generated_tokens - 1 for s in timed) / seconds if seconds > 0 else 0.0
        return out

    @property
    def text(self) -> str:
        """The final answer's text."""
        last = self.messages[-1] if self.messages else None
        return last.content if last and last.role is Role.ASSISTANT and not last.tool_calls else ""


def generate_with_tools(model, messages: Sequence[PromptMessage], tools: list[ToolSpec], settings: SamplingSettings,
                        tool_choice="auto", cancel=None, on_text: Callable[[str], None] | None = None,
                        fmt: ToolFormat | None = None, parallel: bool = True, on_start: Callable | None = None):
    """One reply that may call tools: (its text before any calls, the calls, the Generation).
    on_start(generation): called once the reply has begun, before its first token."""
    fmt = fmt or detect_format(model.template.source)
    usable = [] if tool_choice == "none" else tools
    ids, dropped = tool_prompt_ids(model, messages, tools, fmt, settings.max_new_tokens)
    constraint = tool_constraint(model, usable, tool_choice, fmt, parallel) if usable else None
    stops = tuple(settings.stop) + tuple(getattr(model, "template_stops", ()))
    gen = model.generate(messages, settings.with_(stop=stops), cancel, prompt_ids=ids, constraint=constraint)
    gen.stats.dropped_messages = dropped     # (given prompt_ids, the engine dropped nothing itself)
    if on_start is not None:
        on_start(gen)
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


def run_tool_loop(model, messages: Sequence[PromptMessage], tools: list[ToolSpec], settings: SamplingSettings, *,
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
        on_text, on_start = (lambda piece: emit("text", piece)), (lambda gen: emit("generation", gen))
        if hasattr(model, "reply_with_tools"):     # a server (remote/client.py): it formats and parses the calls
            content, calls, gen = model.reply_with_tools(chat, tools, settings, round_choice, cancel, on_text,
                                                         parallel, on_start=on_start)
        else:
            content, calls, gen = generate_with_tools(model, chat, tools, settings, round_choice, cancel, on_text,
                                                      fmt, parallel, on_start=on_start)
        turn.round_stats.append(gen.stats)
        choice = "auto"
        reason = gen.stats.finish_reason
        if reason == FinishReason.CANCELLED or not calls:
            turn.messages.append(PromptMessage.assistant(content))
            turn.finish_reason = FinishReason.CANCELLED if reason == FinishReason.CANCELLED else (
                FinishReason.TOOL_LIMIT if last_round else (
                    FinishReason.LENGTH if reason == FinishReason.LENGTH else FinishReason.STOP))
            return turn
        msg = PromptMessage.assistant(content, calls)
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
            tool_msg = PromptMessage.tool_result(result)
            chat.append(tool_msg)
            turn.messages.append(tool_msg)
        if cancel is not None and cancel.is_set():
            turn.finish_reason = FinishReason.CANCELLED
            return turn


def _takes_cancel(fn) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        return False

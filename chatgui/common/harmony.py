"""gpt-oss's harmony replies: channels told apart, the analysis shown as thinking.

A gpt-oss reply (the prompt ends with "<|start|>assistant") reads, with the format's markers kept as
text (engine/tokenizer.py renders them, as llama.cpp does):
    <|channel|>analysis<|message|>…reasoning…<|end|><|start|>assistant<|channel|>final<|message|>…answer…
and ends with <|return|> (or <|call|> for a tool call), stop tokens that are not part of the text.
The analysis channel is the model's thinking; the final channel is the answer; a commentary channel
(tool preambles) counts as answer text. No Qt, no torch: the window, the engine and the server use it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CHANNEL, MESSAGE, END, START = "<|channel|>", "<|message|>", "<|end|>", "<|start|>"
STOPS = ("<|return|>", "<|call|>")
THINKING_CHANNELS = ("analysis",)
# a header: optional "<|start|>role", then "<|channel|>name" (maybe " to=… <|constrain|>json"), then <|message|>
_HEADER = re.compile(r"(?:<\|start\|>[^<]*)?<\|channel\|>([^<\s]*)[^<]*(?:<\|constrain\|>[^<]*)?<\|message\|>")

_PARTIAL_MARKER = re.compile(r"<(?:\|[a-z]*\|?)?$")


@dataclass(frozen=True)
class HarmonySplit:
    thinking: str | None     # the analysis channel's text; None when there is none
    answer: str              # the final (and commentary) channels' text
    done: bool               # the analysis has ended (an answer channel has begun, or the reply ended)


def is_harmony(text: str) -> bool:
    return text.lstrip().startswith((CHANNEL, START + "assistant" + CHANNEL))


def split_harmony(text: str) -> HarmonySplit:
    """Split a (possibly still streaming) harmony reply into its thinking and its answer."""
    thinking: list[str] = []
    answer: list[str] = []
    in_analysis_open = False
    pos = 0
    for m in _HEADER.finditer(text):
        if m.start() < pos:
            continue
        channel = m.group(1)
        body_end = text.find(END, m.end())
        body = text[m.end():] if body_end < 0 else text[m.end():body_end]
        for stop in STOPS:
            body = body.split(stop, 1)[0]
        if body_end < 0:
            body = _PARTIAL_MARKER.sub("", body)    # "<|en" while <|end|> streams in
        (thinking if channel in THINKING_CHANNELS else answer).append(body)
        in_analysis_open = body_end < 0 and channel in THINKING_CHANNELS
        pos = len(text) if body_end < 0 else body_end + len(END)
    if pos == 0 and not thinking and not answer:       # a header still being written: nothing to show yet
        return HarmonySplit(None, "", False)
    return HarmonySplit("\n\n".join(t.strip() for t in thinking) if thinking else None,
                        "\n\n".join(a.strip() for a in answer if a.strip()), not in_analysis_open)


def final_answer(text: str) -> str:
    """What a harmony reply said to the user (for the next prompt, a copy, an API reply)."""
    return split_harmony(text).answer if is_harmony(text) else text

"""Tool calls read while they are generated, for streaming them as OpenAI does: first each call's
id and name, then its arguments' JSON text piece by piece. No Qt, no torch.

    streamer = CallStreamer(fmt)
    for event in generation:
        for delta in streamer.feed(model.token_bytes(event.token_id)):
            ...   # CallStart(index, id, name) or ArgsPiece(index, text)

It reads the reply's own text (special tokens as their text). The constraint (tool_calls.py)
makes the calls well-formed with the name before the arguments, so the arguments of a JSON
format are streamed as the model writes them (compact JSON: concatenated, they parse). Gemma 4's
arguments are not JSON: they are sent in one piece, converted, when the call closes. The parsed
calls at the end stay the authority (tool_calls.split_tool_calls); `ids` lets them keep the ids
streamed here.
"""
from __future__ import annotations

import codecs
import json
from dataclasses import dataclass

from chatgui.common.tools import new_call_id


@dataclass(frozen=True)
class CallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ArgsPiece:
    index: int
    text: str


class CallStreamer:
    def __init__(self, fmt):
        self.fmt = fmt
        self.text = ""                 # the reply so far, special tokens as text
        self.ids: list[str] = []       # the id of each call started
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pos = 0                  # where reading goes on
        self._state = "seek"           # seek -> name -> args -> seek ...
        self._depth = 0
        self._in_string = self._escaped = False
        self._name_at = 0

    def feed(self, piece: bytes | str) -> list:
        self.text += piece if isinstance(piece, str) else self._decoder.decode(piece)
        out: list = []
        while True:
            before = (self._state, self._pos)
            getattr(self, "_" + self._state)(out)
            if (self._state, self._pos) == before:
                return out

    # -- where the next call's name begins -------------------------------------------------------
    def _seek(self, out) -> None:
        name = self.fmt.name
        if name == "harmony":
            key = "to=functions."
        elif name == "gemma4":
            key = "<|tool_call>call:"
        else:
            key = '"name":'
            if name != "llama3" and not self.ids:        # (nothing before the calls is read)
                opened = self.text.find(self.fmt.opener)
                if opened < 0:
                    return
                self._pos = max(self._pos, opened)
        at = self.text.find(key, self._pos)
        if at < 0:
            return
        self._name_at, self._pos, self._state = at + len(key), at + len(key), "name"

    def _name(self, out) -> None:
        name = self.fmt.name
        if name in ("harmony", "gemma4"):
            end = self._pos
            while end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_-."):
                end += 1
            if end == len(self.text):       # the name may go on
                return
            found, self._pos = self.text[self._name_at:end], end
        else:
            try:
                found, end = json.JSONDecoder().raw_decode(self.text, _skip_ws(self.text, self._name_at))
            except ValueError:
                return                      # not complete yet
            self._pos = end
        self.ids.append(new_call_id())
        out.append(CallStart(len(self.ids) - 1, self.ids[-1], str(found)))
        self._state = "args_start"

    def _args_start(self, out) -> None:
        name = self.fmt.name
        key = {"harmony": "<|message|>", "gemma4": "{"}.get(name, f'"{self.fmt.args_key}":')
        at = self.text.find(key, self._pos)
        if at < 0:
            return
        begin = _skip_ws(self.text, at + len(key) if name != "gemma4" else at)
        if begin >= len(self.text):          # the key has come, not yet its value: read it again later
            return
        self._pos = begin
        self._depth, self._in_string, self._escaped = 0, False, False
        self._state = "gemma_args" if name == "gemma4" else "args"

    def _args(self, out) -> None:
        """JSON arguments: pass on what is new, up to the end of the value."""
        start, i, text = self._pos, self._pos, self.text
        while i < len(text):
            c = text[i]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    i += 1
                    break
            i += 1
        if i > start:
            out.append(ArgsPiece(len(self.ids) - 1, text[start:i]))
            self._pos = i
        if self._depth == 0 and i > start:
            self._state = "seek"

    def _gemma_args(self, out) -> None:
        from .gemma_calls import GemmaSyntaxError, parse_value

        end = self.text.find("<tool_call|>", self._pos)
        if end < 0:
            return
        try:
            value, _ = parse_value(self.text[:end], self._pos)
            out.append(ArgsPiece(len(self.ids) - 1, json.dumps(value, ensure_ascii=False)))
        except (GemmaSyntaxError, RecursionError):
            pass                            # the parse at the end reports it
        self._pos, self._state = end, "seek"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos

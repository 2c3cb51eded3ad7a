"""Tool calls in the model's own format: the prompt with `tools`, the calls parsed out of a
reply, and a constraint that holds each call's arguments to its tool's JSON schema. No Qt.

The families of chat template, told apart by what the template writes (as llama.cpp does):

    hermes     Qwen 2.5, Hermes, and any template that does not know tools:
               <tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>   (one or more)
    llama3     Llama 3.1 / 3.2 / 3.3: the reply is one JSON object {"name": ..., "parameters": {...}}
    mistral    Mistral Nemo / Small: [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
    phi4       Phi-4-mini as llama.cpp ships its template: <|tool_call|>{"name", "arguments"}<|/tool_call|>
    functools  Phi-4-mini's own template (tools in the system message's "tools" field):
               functools[{"name": ..., "arguments": {...}}, ...]
    granite    Granite 3.x: <|tool_call|>[{"name": ..., "arguments": {...}}, ...]
    gemma4     Gemma 4: <|tool_call>call:NAME{key:value,...}<tool_call|>, not JSON (gemma_calls.py)
    harmony    gpt-oss: a message to=functions.NAME on the commentary channel (harmony_calls.py)

The constraint is lazy, like llama.cpp's lazy grammars: the reply is free text (no mask, no
cost) until the model writes the call's opening marker (`tool_choice` "auto"), or a call is
forced from the first token ("required" or a named function). From the marker on, an
llguidance grammar allows only a call whose name is one of the tools and whose arguments match
that tool's schema, so every call the model finishes parses and validates.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Sequence

from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.tools import ToolCall, ToolSpec, checked_call, new_call_id

from .chat_template import template_dicts
from .errors import PromptTooLongError


@dataclass(frozen=True)
class ToolFormat:
    name: str
    opener: str          # the text that begins the calls ("" for llama3: the reply is the JSON)
    closer: str          # the text that ends one call ("" where the JSON ends it)
    args_key: str        # "arguments" or "parameters"
    native: bool = True  # the template renders tools itself (else they go into the system prompt)
    pad: str = "\n"      # between the opener, the call and the closer (hermes' newlines)
    listed: bool = False # the calls are one JSON list after the opener (mistral, functools)


HERMES = ToolFormat("hermes", "<tool_call>", "</tool_call>", "arguments")
LLAMA3 = ToolFormat("llama3", "", "", "parameters")
MISTRAL = ToolFormat("mistral", "[TOOL_CALLS]", "", "arguments", listed=True)
PHI4 = ToolFormat("phi4", "<|tool_call|>", "<|/tool_call|>", "arguments", pad="")
# (its opener holds the list's "[": the word alone, Python's module, is no call)
FUNCTOOLS = ToolFormat("functools", "functools[", "", "arguments", listed=True)
GEMMA4 = ToolFormat("gemma4", "<|tool_call>", "<tool_call|>", "arguments", pad="")
HARMONY = ToolFormat("harmony", "to=functions.", "", "arguments", pad="")
GRANITE = ToolFormat("granite", "<|tool_call|>", "", "arguments", listed=True)
PLAIN = ToolFormat("hermes", "<tool_call>", "</tool_call>", "arguments", native=False)
FORMATS = {f.name: f for f in (HERMES, LLAMA3, MISTRAL, PHI4, FUNCTOOLS, GEMMA4, HARMONY, GRANITE)}


def detect_format(template_source: str | None) -> ToolFormat:
    """The call format a chat template teaches its model; PLAIN (Hermes-style calls described in
    the system prompt) for a template that does not render tools at all."""
    src = template_source or ""
    if "tools" not in src:
        return PLAIN
    if "[TOOL_CALLS]" in src:
        return MISTRAL
    if "<tool_call>" in src:
        return HERMES
    if "<|tool_call>" in src:
        return GEMMA4
    if "<|tool_call|>" in src:       # Granite 3.x writes a JSON list after it, Phi-4-mini one object in it
        return GRANITE if "<|start_of_role|>" in src else PHI4
    if "<|tool|>" in src and "message['tools']" in src:
        return FUNCTOOLS
    if "<|channel|>" in src and "to=" in src:
        return HARMONY
    if "<|start_header_id|>" in src and ('"parameters"' in src or "<|python_tag|>" in src):
        return LLAMA3
    return PLAIN


# -- the prompt ------------------------------------------------------------------------------
def plain_tool_messages(messages: Sequence[PromptMessage], tools: list[ToolSpec]) -> list[PromptMessage]:
    """For a template that knows nothing of tools: the tools described in the system prompt (the
    Hermes wording Qwen uses), calls written back as <tool_call> text, results as user turns."""
    listing = "\n".join(json.dumps(t.to_openai(), ensure_ascii=False) for t in tools)
    guide = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
             f"with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n</tools>\n\n"
             "For each function call, return a json object with function name and arguments within "
             "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
             "<args-json-object>}\n</tool_call>")
    system, rest = _split_system(messages)
    out = [PromptMessage.system(system.content + "\n\n" + guide if system is not None else guide)]
    for m in rest:
        if m.role is Role.ASSISTANT and m.tool_calls:
            text = m.content + "".join(
                "\n<tool_call>\n" + json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
                + "\n</tool_call>" for c in m.tool_calls)
            out.append(PromptMessage.assistant(text.lstrip("\n")))
        elif m.role is Role.TOOL:
            out.append(PromptMessage.user(f"<tool_response>\n{m.content}\n</tool_response>"))
        else:
            out.append(m.text_only())
    return out


def _split_system(messages: Sequence[PromptMessage]) -> tuple[PromptMessage | None, list[PromptMessage]]:
    if messages and messages[0].role is Role.SYSTEM:
        return messages[0], list(messages[1:])
    return None, list(messages)


def render_with_tools(template, messages: Sequence[PromptMessage], tools: list[ToolSpec], fmt: ToolFormat) -> str:
    """The prompt text: the template's own rendering of `tools`, or PLAIN's system prompt."""
    if not tools:
        return template.render(messages, add_generation_prompt=True)
    if not fmt.native:
        return template.render(plain_tool_messages(messages, tools), add_generation_prompt=True)
    if fmt.name == "functools":      # Phi-4-mini's own template reads no `tools`, only the system message's
        return template.render_dicts(functools_messages(messages, tools), add_generation_prompt=True)
    listed = [t.to_openai() for t in tools]
    if fmt.name == "gemma4":
        from .gemma_calls import with_types
        # Gemma's template reads every property's `type` (an enum alone would fail it)
        listed = [{**t, "function": {**t["function"], "parameters": with_types(t["function"]["parameters"])}}
                  for t in listed]
        return template.render_dicts(gemma_messages(template_dicts(messages)), add_generation_prompt=True,
                                     tools=listed)
    if fmt.name == "harmony":
        from .harmony_calls import harmony_messages
        messages = harmony_messages(messages)
    elif fmt.name == "granite":       # its template writes no tool_calls: they go back as the model wrote them
        messages = [_calls_as_text(m, fmt.opener) for m in messages]
    return template.render(messages, add_generation_prompt=True, tools=listed)


def _calls_as_text(m: PromptMessage, opener: str) -> PromptMessage:
    """An assistant message's calls written into its content as opener[{"name", "arguments"}, ...]."""
    if m.role is not Role.ASSISTANT or not m.tool_calls:
        return m
    listed = json.dumps([{"name": c.name, "arguments": c.arguments} for c in m.tool_calls], ensure_ascii=False)
    return PromptMessage.assistant(m.content + opener + listed)


def functools_messages(messages: Sequence[PromptMessage], tools: list[ToolSpec]) -> list[dict]:
    """Phi-4-mini's layout (template dicts): the tools as a JSON text in the system message's
    "tools" field (as Microsoft's examples pass them), earlier calls written back as
    functools[...] text, results as `tool` turns."""
    system, rest = _split_system(messages)
    if system is None:
        system = PromptMessage.system("You are a helpful assistant with some tools.")
    msgs = template_dicts([system, *(_calls_as_text(m, "functools") for m in rest)])
    msgs[0]["tools"] = json.dumps([t.to_openai()["function"] for t in tools], ensure_ascii=False)
    return msgs


def gemma_messages(msgs: list[dict]) -> list[dict]:
    """Gemma 4's layout (template dicts, as it needs a field PromptMessage has not): a call's
    results are not `tool` turns but the calling model turn's `tool_responses` ({name, response}),
    and the answer that follows them continues that turn (as llama.cpp builds them for this template)."""
    out: list[dict] = []
    for m in msgs:
        last = out[-1] if out else None
        if m["role"] == "tool" and last is not None and last.get("tool_calls"):
            names = {c["id"]: c["function"]["name"] for c in last["tool_calls"]}
            response = m["content"]
            try:
                parsed = json.loads(response)
                response = parsed if isinstance(parsed, dict) else response
            except ValueError:
                pass
            last.setdefault("tool_responses", []).append(
                {"name": m.get("name") or names.get(m.get("tool_call_id"), ""), "response": response})
        elif (m["role"] == "assistant" and not m.get("tool_calls") and last is not None
              and last.get("tool_responses") and not last.get("content")):
            last["content"] = m["content"]
        else:
            out.append(dict(m))
    return out


def tool_prompt_ids(model, messages: Sequence[PromptMessage], tools: list[ToolSpec], fmt: ToolFormat,
                    max_new_tokens: int) -> tuple[list[int], int]:
    """Prompt ids for a reply that may call tools, and how many messages were dropped to fit:
    the oldest turns after the system prompt go first (never the last user turn and what follows)."""
    system, rest = _split_system(messages)
    head = [system] if system is not None else []
    room = model.context_length - max(1, min(max_new_tokens, model.context_length // 2))
    starts = [i for i, m in enumerate(rest) if m.role is Role.USER] or [0]
    for drop in starts:
        ids = model.tokenize(render_with_tools(model.template, head + rest[drop:], tools, fmt))
        if len(ids) <= room:
            return ids, drop
    raise PromptTooLongError(f"The conversation with its {len(tools)} tools is too long for this model's context "
                             f"({len(ids)} tokens, the limit is {model.context_length}).")


# -- parsing ---------------------------------------------------------------------------------
_SKIP_WS = re.compile(r"\s*")


def split_tool_calls(text: str, fmt: ToolFormat, tools: list[ToolSpec]) -> tuple[str, list[ToolCall]]:
    """(the reply's text before its calls, the calls). text: the reply with special tokens kept
    (a marker may be one). Each call is checked: a known tool, arguments that parse and match
    its schema; a call that fails has `error` saying why (the loop hands that back to the model)."""
    by_name = {t.name: t for t in tools}
    if fmt.name == "llama3":
        body = text.strip()
        if body.startswith("<|python_tag|>"):
            body = body[len("<|python_tag|>"):].lstrip()
        if not body.startswith("{"):
            return text, []
        return "", [_call_from(item, fmt, by_name) for item in _json_values(body, 0, single=True)]
    if fmt.name == "harmony":
        return _split_harmony(text, by_name)
    at = text.find(fmt.opener)
    if at < 0:
        return text, []
    content, calls = text[:at].rstrip(), []
    if fmt.name == "gemma4":
        return content, _gemma_calls(text, at, fmt, by_name)
    if fmt.listed:
        pos = _SKIP_WS.match(text, at + len(fmt.opener.rstrip("["))).end()
        for item in _json_values(text, pos, single=True):
            items = item if isinstance(item, list) else [item]
            calls.extend(_call_from(x, fmt, by_name) for x in items)
        return content, calls
    pos = at
    while pos >= 0:
        start = pos + len(fmt.opener)
        end = text.find(fmt.closer, start)
        chunk = text[start:end if end >= 0 else len(text)]
        if end < 0:
            calls.append(_broken("the reply ended inside the call (no closing " + fmt.closer + ")"))
            break
        calls.extend(_call_from(x, fmt, by_name) for x in _json_values(chunk.strip(), 0, single=True))
        pos = text.find(fmt.opener, end)
    return content, calls


def _split_harmony(text: str, by_name: dict[str, ToolSpec]) -> tuple[str, list[ToolCall]]:
    from .harmony_calls import split_harmony_call

    found = split_harmony_call(text)
    if found is None:
        return text, []
    before, name, body, problem = found
    if problem:
        return before, [ToolCall(new_call_id(), name, {}, problem)]
    item = _json_values(body, 0, single=True)[0] if body else {"__error__": "the call has no arguments"}
    if isinstance(item, dict) and "__error__" not in item:
        item = {"name": name, "arguments": item}
    return before, [_call_from(item, HARMONY, by_name)]


def _gemma_calls(text: str, at: int, fmt: ToolFormat, by_name: dict[str, ToolSpec]) -> list[ToolCall]:
    """Each <|tool_call>call:NAME{...}<tool_call|> from at on, read by gemma_calls.parse_value."""
    from .gemma_calls import GemmaSyntaxError, parse_value

    calls = []
    pos = at
    while pos >= 0:
        start = pos + len(fmt.opener)
        end = text.find(fmt.closer, start)
        chunk = text[start:end if end >= 0 else len(text)].strip()
        if end < 0:
            calls.append(_broken("the reply ended inside the call (no closing " + fmt.closer + ")"))
            break
        brace = chunk.find("{")
        if not chunk.startswith("call:") or brace < 0:
            calls.append(_broken("the call is not call:NAME{...}"))
        else:
            try:
                args, stop = parse_value(chunk, brace)
                extra = chunk[stop:].strip()
                item = {"name": chunk[5:brace].strip(), "arguments": args} if not extra else {
                    "__error__": f"the call goes on after its arguments ({extra[:20]!r})"}
            except (GemmaSyntaxError, RecursionError) as e:
                item = {"__error__": f"the call's arguments do not parse ({e})"}
            calls.append(_call_from(item, fmt, by_name))
        pos = text.find(fmt.opener, end)
    return calls


def _json_values(text: str, pos: int, single: bool):
    """The JSON value at text[pos:] (a list of one), or a marker object when it does not parse."""
    try:
        value, _end = json.JSONDecoder().raw_decode(text, pos)
    except (ValueError, RecursionError) as e:
        return [{"__error__": f"the call is not valid JSON ({e})"}]
    return [value]


def _broken(why: str) -> ToolCall:
    return ToolCall(new_call_id(), "", {}, why)


def _call_from(item, fmt: ToolFormat, by_name: dict[str, ToolSpec]) -> ToolCall:
    if not isinstance(item, dict):
        return _broken("the call is not a JSON object")
    if "__error__" in item:
        return _broken(item["__error__"])
    name = item.get("name")
    call_id = item["id"] if isinstance(item.get("id"), str) and item["id"] else new_call_id()
    if not isinstance(name, str) or not name:
        return ToolCall(call_id, "", {}, "the call has no tool name")
    args = item.get(fmt.args_key, item.get("arguments", item.get("parameters", {})))
    return checked_call(call_id, name, args, by_name)


# -- the constraint --------------------------------------------------------------------------
def call_schema(tool: ToolSpec, fmt: ToolFormat) -> dict:
    """The JSON schema of one call object of this tool in this format."""
    params = tool.parameters if isinstance(tool.parameters, dict) and tool.parameters else {"type": "object"}
    return {"type": "object", "properties": {"name": {"const": tool.name}, fmt.args_key: params},
            "required": ["name", fmt.args_key], "additionalProperties": False}


def _lark_marker(model, text: str) -> str:
    """A marker in llguidance's Lark: a special token by id where the vocabulary has it as one."""
    ids = model.tokenize(text, add_bos=False)
    if len(ids) == 1 and ids[0] in model.tok.special_ids:
        return f"<[{ids[0]}]>"
    return json.dumps(text)


# Parallel calls in one reply, at most: a weak model may otherwise go on adding calls until the
# token limit cuts the last one short.
MAX_PARALLEL_CALLS = 4


def call_grammar(model, tools: list[ToolSpec], fmt: ToolFormat, parallel: bool = True, forced: bool = False) -> str:
    """A Lark grammar for the calls region of a reply, from its opening marker to the end
    (forced: from the reply's first token, where a format's call needs more than its marker)."""
    if fmt.name == "harmony":
        from .harmony_calls import call_grammar as harmony_grammar
        return harmony_grammar(tools, lambda text: _lark_marker(model, text), forced)
    if fmt.name == "gemma4":
        return _gemma_grammar(model, tools, fmt, parallel)
    schema = {"anyOf": [call_schema(t, fmt) for t in tools]} if len(tools) > 1 else call_schema(tools[0], fmt)
    # compact JSON, as the templates write calls back (flexible whitespace lets a weak model pad
    # a call with newlines until it runs out of tokens)
    schema["x-guidance"] = {"whitespace_flexible": False, "coerce_one_of": True}
    body = json.dumps(schema)
    if fmt.name == "llama3":
        return f"start: WS call\nWS: /[ \\t\\n]*/\ncall: %json {body}\n"
    if fmt.listed:
        calls = _up_to("call", '", "', MAX_PARALLEL_CALLS if parallel else 1)
        opener = f'{_lark_marker(model, fmt.opener)}' + ("" if fmt.opener.endswith("[") else ' "["')
        return f'start: {opener} {calls} "]"\ncall: %json {body}\n'
    pad = f" {json.dumps(fmt.pad)} " if fmt.pad else " "
    one = f'{_lark_marker(model, fmt.opener)}{pad}call{pad}{_lark_marker(model, fmt.closer)}'
    calls = _up_to("one", json.dumps(fmt.pad) if fmt.pad else "", MAX_PARALLEL_CALLS if parallel else 1)
    return f"start: {calls}\none: {one}\ncall: %json {body}\n"


def _gemma_grammar(model, tools: list[ToolSpec], fmt: ToolFormat, parallel: bool) -> str:
    """Gemma 4's calls: <|tool_call>call:NAME{...}<tool_call|>, the object written from the
    tool's schema in Gemma's own syntax (gemma_calls.GemmaGrammar)."""
    from .gemma_calls import QUOTE, GemmaGrammar

    quote = _lark_marker(model, QUOTE)
    g = GemmaGrammar(quote, quote_is_token=quote.startswith("<["))
    named = []
    for tool in tools:
        params = tool.parameters if isinstance(tool.parameters, dict) and tool.parameters else {"type": "object"}
        named.append(f"({json.dumps('call:' + tool.name)} {g.object(params)})")
    one = f"{_lark_marker(model, fmt.opener)} gcall {_lark_marker(model, fmt.closer)}"
    calls = _up_to("one", "", MAX_PARALLEL_CALLS if parallel else 1)
    return f"start: {calls}\none: {one}\ngcall: {' | '.join(named)}\n" + g.lark()


def _up_to(item: str, sep: str, n: int) -> str:
    """Lark for 1..n items with separators: a b (sep b (sep b)?)? ... (sep "" for none)"""
    out = item
    for _ in range(n - 1):
        out = f"{item} ({sep + ' ' if sep else ''}{out})?"
    return out


class ToolCallConstraint:
    """The engine's constraint interface (mask / advance / fresh / failed / finished, as
    constrained.JsonConstraint) for a reply that may call tools.

    forced: a call from the first token ("required", a named function); else free text until the
    opening marker. Until then `mask` returns the logits untouched: a reply that calls nothing
    costs nothing. `active` tells a streaming caller that the call region has begun."""

    def __init__(self, model, tools: list[ToolSpec], fmt: ToolFormat, forced: bool = False, parallel: bool = True,
                 _grammar: str | None = None):
        import llguidance

        from .constrained import ConstraintError, _ll_tokenizer

        if not tools:
            raise ConstraintError("no tools to call")
        self.model, self.tools, self.fmt, self.forced, self.parallel = model, list(tools), fmt, forced, parallel
        self.vocab_size = model.args.vocab_size
        self._grammar = _grammar or call_grammar(model, self.tools, fmt, parallel and fmt.name != "harmony", forced)
        self._tokenizer = _ll_tokenizer(model)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(
            llguidance.LLMatcher.grammar_from_lark(self._grammar), self._tokenizer)
        if is_error:
            raise ConstraintError(messages[0] if messages else "the tools' schemas cannot be compiled")
        self._reply = bytearray()     # the reply's bytes so far (special tokens as their text)
        self._ids: list[int] = []
        self._inner = None            # constrained.JsonConstraint over the call grammar, once active
        self._broken: str | None = None
        self._opener = fmt.opener.encode()
        if forced:
            self._activate(b"")

    def fresh(self) -> "ToolCallConstraint":
        return ToolCallConstraint(self.model, self.tools, self.fmt, self.forced, self.parallel, self._grammar)

    @property
    def active(self) -> bool:
        return self._inner is not None

    def _activate(self, tail: bytes) -> None:
        """Start the grammar, fed what the reply already holds of the call region (tail)."""
        import llguidance

        from .constrained import JsonConstraint

        matcher = llguidance.LLMatcher(self._tokenizer, llguidance.LLMatcher.grammar_from_lark(self._grammar),
                                       log_level=0)
        self._inner = JsonConstraint(matcher, self.vocab_size)
        if tail:
            text = tail.decode("utf-8", "replace")
            ids = self._marker_ids(text)
            if self._inner._matcher.try_consume_tokens(ids) != len(ids):
                # The model wrote the marker inside a token that does not fit the grammar: this
                # call cannot be held to it any more; the parser will say what is wrong with it.
                self._broken = "the call began in a way the grammar does not allow"
                self._inner = None

    def _marker_ids(self, text: str) -> list[int]:
        """Token ids for text that starts with the opener, the opener as its special token if any."""
        m = self.model
        if self.fmt.opener and text.startswith(self.fmt.opener):
            head = m.tokenize(self.fmt.opener, add_bos=False)
            return head + (m.tokenize(text[len(self.fmt.opener):], add_bos=False) if len(text) > len(self.fmt.opener)
                           else [])
        return m.tokenize(text, add_bos=False)

    def mask(self, logits):
        if self._inner is None:
            return logits
        return self._inner.mask(logits)

    def advance(self, token_id: int) -> None:
        if self._inner is not None:
            self._inner.advance(token_id)
            return
        if self._broken:
            return
        self._reply += self.model.token_bytes(token_id)
        self._ids.append(int(token_id))
        if self.fmt.name == "llama3":
            stripped = self._reply.lstrip()
            if stripped[:1] == b"{":
                self._activate(bytes(self._reply))
            elif stripped:
                self._broken = "free text"      # text first: not a call (llama3 calls are the whole reply)
            return
        # only the newest bytes can complete the marker
        window = self._reply[-(len(self._opener) + 64):]
        at = window.find(self._opener)
        if at >= 0:
            self._activate(bytes(window[at:]))

    @property
    def failed(self) -> str | None:
        return self._inner.failed if self._inner is not None else None

    @property
    def finished(self) -> bool:
        return self._inner.finished if self._inner is not None else False


def tool_constraint(model, tools: list[ToolSpec], tool_choice="auto", fmt: ToolFormat | None = None,
                    parallel: bool = True) -> ToolCallConstraint | None:
    """The constraint for a reply with these tools and this tool_choice: "auto", "none" (None:
    nothing to constrain), "required", or a tool's name (a call of that tool, forced)."""
    fmt = fmt or detect_format(model.template.source)
    if tool_choice == "none" or not tools:
        return None
    if tool_choice not in ("auto", "required"):
        tools = [t for t in tools if t.name == tool_choice]
        if not tools:
            from .constrained import ConstraintError
            raise ConstraintError(f"tool_choice names {tool_choice!r}, which is not among the tools")
    return ToolCallConstraint(model, tools, fmt, forced=tool_choice != "auto", parallel=parallel)


class CallTextFilter:
    """What of a streamed reply may be shown as text: everything before the calls. Holds back a
    tail that may be the start of the opening marker, and everything once the calls begin (or,
    for llama3, a reply that begins with "{"). feed(piece) -> text to show now."""

    def __init__(self, fmt: ToolFormat, constraint: ToolCallConstraint | None = None):
        self.fmt, self.constraint = fmt, constraint
        self._held, self._calls, self._shown_any = "", False, False
        self.shown = ""          # all the text let through so far

    def feed(self, piece: str) -> str:
        out = self._feed(piece)
        self.shown += out
        return out

    def _feed(self, piece: str) -> str:
        if self._calls or (self.constraint is not None and self.constraint.active):
            self._calls = True
            return ""
        text = self._held + piece
        if self.fmt.name == "harmony":
            return self._feed_harmony(text)
        if self.fmt.name == "llama3":
            if not self._shown_any:
                if not text.strip():
                    self._held = text
                    return ""
                if text.lstrip().startswith("{"):
                    self._calls = True
                    return ""
            self._held, self._shown_any = "", True
            return text
        at = text.find(self.fmt.opener)
        if at >= 0:
            self._calls, self._held = True, ""
            return text[:at]
        keep = 0
        for n in range(min(len(self.fmt.opener) - 1, len(text)), 0, -1):
            if self.fmt.opener.startswith(text[-n:]):
                keep = n
                break
        self._held = text[len(text) - keep:]
        return text[:len(text) - keep]

    def _feed_harmony(self, text: str) -> str:
        """gpt-oss: a header is held back until its <|message|> shows it is no call; the header
        of a call, and all after it, is never shown."""
        from chatgui.common.harmony import CHANNEL, MESSAGE, START

        from .harmony_calls import OPENER, header_start
        at = text.find(OPENER)
        if at >= 0:
            self._calls, self._held = True, ""
            return text[:header_start(text, at)]
        body = text.rfind(MESSAGE)
        opened = [p for p in (text.rfind(START), text.rfind(CHANNEL)) if p > body]
        keep = min(opened) if opened else len(text)
        lt = text.rfind("<")
        if lt >= 0 and ">" not in text[lt:]:         # a marker still being written
            keep = min(keep, lt)
        self._held = text[keep:]
        return text[:keep]

    def flush(self) -> str:
        """At the end: held text that never became a marker."""
        if self._calls:
            return ""
        out, self._held = self._held, ""
        self.shown += out
        return out

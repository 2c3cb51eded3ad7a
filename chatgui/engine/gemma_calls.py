"""Gemma 4's call syntax: read a call's arguments, and a grammar that holds them to a JSON schema.
No Qt, no torch.

Gemma 4's chat template writes a call as

    <|tool_call>call:get_weather{city:<|"|>Paris<|"|>,days:3}<tool_call|>

an object whose keys are bare words and whose strings are quoted by the <|"|> token (nothing in
them is escaped); numbers, true, false, null and [lists] as in JSON, keys in sorted order (the
template's `dictsort`). This is no JSON, so llguidance's %json cannot hold it to a schema: the
grammar here is written from the schema instead, for what Gemma's syntax can say (objects with
known properties, strings with enum/const/length limits, integers in a range, numbers, booleans,
null, arrays with item counts, anyOf/oneOf and type lists). A keyword it cannot express (a pattern,
a $ref, a number's bounds) makes that value looser, never stricter: the parsed call is checked
against the whole schema afterwards (common.tools.schema_problem), as every format's is.
"""
from __future__ import annotations

import json
import re

QUOTE = '<|"|>'
MAX_ENUMERATED_INTEGERS = 200     # a range wider than this is any integer (then checked afterwards)
MAX_EXPANDED_ITEMS = 8            # minItems/maxItems up to this are spelled out in the grammar


class GemmaSyntaxError(ValueError):
    pass


# -- reading ---------------------------------------------------------------------------------
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEY = re.compile(r"[A-Za-z0-9_\-.$@]+")


def parse_value(text: str, pos: int = 0, quote: str = QUOTE):
    """(the value at text[pos:], where it ends); GemmaSyntaxError saying what is wrong."""
    pos = _skip(text, pos)
    if text.startswith(quote, pos):
        end = text.find(quote, pos + len(quote))
        if end < 0:
            raise GemmaSyntaxError("a string is not closed")
        return text[pos + len(quote):end], end + len(quote)
    if text.startswith("{", pos):
        return _parse_object(text, pos + 1, quote)
    if text.startswith("[", pos):
        out, pos = [], _skip(text, pos + 1)
        if text.startswith("]", pos):
            return out, pos + 1
        while True:
            value, pos = parse_value(text, pos, quote)
            out.append(value)
            pos = _skip(text, pos)
            if text.startswith("]", pos):
                return out, pos + 1
            if not text.startswith(",", pos):
                raise GemmaSyntaxError(f"a list goes on with neither ',' nor ']' at {pos}")
            pos += 1
    for word, value in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, pos):
            return value, pos + len(word)
    m = _NUMBER.match(text, pos)
    if m:
        return json.loads(m.group()), m.end()
    raise GemmaSyntaxError(f"no value at {pos}: {text[pos:pos + 20]!r}")


def _parse_object(text: str, pos: int, quote: str):
    out: dict = {}
    pos = _skip(text, pos)
    if text.startswith("}", pos):
        return out, pos + 1
    while True:
        pos = _skip(text, pos)
        if text.startswith(quote, pos):          # a key written quoted (the template's escape_keys)
            key, pos = parse_value(text, pos, quote)
        else:
            m = _KEY.match(text, pos)
            if not m:
                raise GemmaSyntaxError(f"no key at {pos}: {text[pos:pos + 20]!r}")
            key, pos = m.group(), m.end()
        pos = _skip(text, pos)
        if not text.startswith(":", pos):
            raise GemmaSyntaxError(f"the key {key!r} has no ':'")
        out[key], pos = parse_value(text, pos + 1, quote)
        pos = _skip(text, pos)
        if text.startswith("}", pos):
            return out, pos + 1
        if not text.startswith(",", pos):
            raise GemmaSyntaxError(f"an object goes on with neither ',' nor '}}' at {pos}")
        pos += 1


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def gemma_literal(value, quote: str = QUOTE) -> str:
    """A value as Gemma's template writes it (format_argument, keys bare)."""
    if isinstance(value, str):
        return quote + value + quote
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{gemma_literal(v, quote)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(gemma_literal(v, quote) for v in value) + "]"
    return json.dumps(value)


def with_types(schema):
    """A copy of schema where every property says its `type` (Gemma's template reads it): taken
    from an enum's or const's values, "object" where it has properties, else "string"."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _typed(with_types(v)) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _typed(with_types(out["items"]))
    return out


def _typed(schema):
    if not isinstance(schema, dict) or "type" in schema:
        return schema
    values = schema.get("enum") if isinstance(schema.get("enum"), list) else (
        [schema["const"]] if "const" in schema else [])
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array",
             type(None): "null"}
    if values:
        kind = kinds.get(type(values[0]), "string")
    else:
        kind = "object" if "properties" in schema else "string"
    return {**schema, "type": kind}


# -- the grammar -----------------------------------------------------------------------------
class GemmaGrammar:
    """Lark rules (llguidance's dialect) for values of JSON schemas in Gemma's syntax.
    quote: how the grammar writes the string quote (a special token as <[id]>, else a literal).
    quote_is_token: strings may then hold any text (a text token can never be the quote)."""

    def __init__(self, quote: str, quote_is_token: bool):
        self.quote, self.quote_is_token = quote, quote_is_token
        self.rules: dict[str, str] = {}
        self._n = 0

    def _rule(self, body: str, hint: str = "v") -> str:
        self._n += 1
        name = f"g{hint}{self._n}"
        self.rules[name] = body
        return name

    def _string_body(self, lo: int = 0, hi: int | None = None) -> str:
        char = r"[^\x00]" if self.quote_is_token else r"(?:[^<\x00]|<[^|\x00])"
        if lo == 0 and hi is None:
            return f"/{char}*/"
        return f"/{char}{{{lo},{'' if hi is None else hi}}}/"

    def _literal(self, value) -> str:
        """Lark for one literal value (strings quoted by the quote marker)."""
        if isinstance(value, str):
            return f"{self.quote} {json.dumps(value)} {self.quote}" if value else f"{self.quote} {self.quote}"
        if isinstance(value, (dict, list)):
            return self._generic()            # (an object or list constant: checked afterwards)
        return json.dumps(gemma_literal(value, ""))

    def _generic(self) -> str:
        """Any value (what a schema without limits allows)."""
        if "gany" not in self.rules:
            self.rules["gany"] = "gstr | gnum | \"true\" | \"false\" | \"null\" | gobj | glist"
            self.rules["gstr"] = f"{self.quote} {self._string_body()} {self.quote}"
            self.rules["gnum"] = r"/-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+\-]?[0-9]+)?/"
            self.rules["gobj"] = '"{" (gpair ("," gpair)*)? "}"'
            self.rules["gpair"] = r'/[A-Za-z_][A-Za-z0-9_]*/ ":" gany'
            self.rules["glist"] = '"[" (gany ("," gany)*)? "]"'
        return "gany"

    def value(self, schema) -> str:
        """The name of a rule (or an inline expression) for values of schema."""
        if schema is True or not isinstance(schema, dict) or not schema:
            return self._generic()
        if "const" in schema:
            return self._rule(self._literal(schema["const"]), "c")
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._rule(" | ".join(self._literal(v) for v in schema["enum"]), "e")
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self._rule(" | ".join(self.value(s) for s in schema[key]), "a")
        kind = schema.get("type")
        if isinstance(kind, list):
            return self._rule(" | ".join(self.value({**schema, "type": k}) for k in kind), "t")
        if kind == "string":
            lo, hi = schema.get("minLength", 0), schema.get("maxLength")
            lo = lo if isinstance(lo, int) and lo >= 0 else 0
            hi = hi if isinstance(hi, int) and hi >= lo else None
            return self._rule(f"{self.quote} {self._string_body(lo, hi)} {self.quote}", "s")
        if kind == "integer":
            return self._rule(_integers(schema.get("minimum"), schema.get("maximum")), "i")
        if kind == "number":
            return self._rule(r"/-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+\-]?[0-9]+)?/", "n")
        if kind == "boolean":
            return self._rule('"true" | "false"', "b")
        if kind == "null":
            return self._rule('"null"', "z")
        if kind == "array":
            return self._array(schema)
        if kind == "object" or "properties" in schema:
            return self.object(schema)
        return self._generic()

    def _array(self, schema: dict) -> str:
        item = self.value(schema.get("items", True))
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        lo = lo if isinstance(lo, int) and 0 <= lo <= MAX_EXPANDED_ITEMS else 0
        hi = hi if isinstance(hi, int) and lo <= hi <= MAX_EXPANDED_ITEMS else None
        if hi is None and lo == 0:
            return self._rule(f'"[" ({item} ("," {item})*)? "]"', "l")
        if hi is None:       # at least lo
            return self._rule('"[" ' + ' "," '.join([item] * lo) + f' ("," {item})* "]"', "l")
        options = ['"[" "]"'] if lo == 0 else []
        options += ['"[" ' + ' "," '.join([item] * n) + ' "]"' for n in range(max(lo, 1), hi + 1)]
        return self._rule(" | ".join(options), "l")

    def object(self, schema: dict) -> str:
        """{key:value,...}: the schema's properties in sorted order (as the template writes them),
        the required ones always, each optional one or not."""
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        if not props:
            if schema.get("additionalProperties") is False:
                return self._rule('"{" "}"', "o")
            self._generic()
            return "gobj"
        required = set(schema.get("required") or [])
        names = sorted(props)
        pairs = [f'{json.dumps(k + ":")} {self.value(props[k])}' for k in names]
        # rest(i, first): the properties from i on; a comma before each but the first written
        rest: dict[tuple[int, bool], str] = {}
        for i in range(len(names), -1, -1):
            for first in (True, False):
                if i == len(names):
                    rest[(i, first)] = ""
                    continue
                sep = "" if first else '"," '
                after = rest[(i + 1, False)]
                take = f"{sep}{pairs[i]} {after}".strip()
                if names[i] in required:
                    body = take
                else:
                    skip = rest[(i + 1, first)]
                    body = f"({take}) | ({skip})" if skip else f"({take})?"
                rest[(i, first)] = self._rule(body, "p") if body else ""
        inner = rest[(0, True)]
        return self._rule(f'"{{" {inner} "}}"' if inner else '"{" "}"', "o")

    def lark(self) -> str:
        return "".join(f"{name}: {body}\n" for name, body in self.rules.items())


def _integers(lo, hi) -> str:
    """Lark for the integers in [lo, hi] (either bound may be missing)."""
    lo = lo if isinstance(lo, (int, float)) and not isinstance(lo, bool) else None
    hi = hi if isinstance(hi, (int, float)) and not isinstance(hi, bool) else None
    if lo is not None and hi is not None:
        import math
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        if lo_i > hi_i:
            return '"0"'         # no integer fits: the check afterwards says so
        if hi_i - lo_i <= MAX_ENUMERATED_INTEGERS:
            return " | ".join(json.dumps(str(n)) for n in range(lo_i, hi_i + 1))
    if lo is not None and lo >= 0:
        return r"/(0|[1-9][0-9]*)/"
    return r"/-?(0|[1-9][0-9]*)/"

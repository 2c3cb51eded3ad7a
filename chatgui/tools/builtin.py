"""The built-in tools, each off until the user turns it on: a calculator, the date and time, and
a search of this chat's history (a function the caller gives: the store is not imported here)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from chatgui.common.tools import ToolSpec

from .calculator import CalculatorError, calculate, format_number

CALCULATOR = ToolSpec(
    "calculator", "Evaluate an arithmetic expression exactly (+ - * / // % ** and sqrt, log, sin, cos, pi, e, ...).",
    {"type": "object", "properties": {"expression": {"type": "string", "description": "e.g. (3 + 4) * 2 ** 10",
                                                     "maxLength": 500}},
     "required": ["expression"], "additionalProperties": False}, "builtin")
CLOCK = ToolSpec(
    "current_datetime", "The current local date, time, weekday and time zone.",
    {"type": "object", "properties": {}, "additionalProperties": False}, "builtin")
HISTORY = ToolSpec(
    "search_chat_history", "Search the user's earlier chats for a phrase; returns matching excerpts.",
    {"type": "object", "properties": {"query": {"type": "string", "maxLength": 200},
                                      "limit": {"type": "integer", "minimum": 1, "maximum": 20}},
     "required": ["query"], "additionalProperties": False}, "builtin")


def run_calculator(args: dict) -> str:
    try:
        return format_number(calculate(args.get("expression", "")))
    except CalculatorError as e:
        raise ValueError(f"The calculator refused it: {e}") from None


def run_clock(args: dict, now: Callable[[], datetime] | None = None) -> str:
    t = (now or (lambda: datetime.now().astimezone()))()
    return t.strftime("%A %d %B %Y, %H:%M:%S") + (f" ({t.tzname()}, UTC{t.strftime('%z')})" if t.tzinfo else "")


def history_runner(search: Callable[[str, int], list[str]]) -> Callable[[dict], str]:
    """A search_chat_history tool over search(query, limit) -> excerpts (e.g. the store's FTS)."""
    def run(args: dict) -> str:
        query = str(args.get("query") or "").strip()
        if not query:
            raise ValueError("The search needs a query.")
        hits = search(query, int(args.get("limit") or 5))
        if not hits:
            return f"No earlier message mentions {query!r}."
        return "\n\n".join(f"[{i + 1}] {h}" for i, h in enumerate(hits))
    return run

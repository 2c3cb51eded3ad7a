"""The built-in tools, the consent policy and the ToolBox (no model needed)."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.tools import ToolCall, ToolResult, ToolSpec
from chatgui.tools import builtin
from chatgui.tools.calculator import CalculatorError, calculate
from chatgui.tools.consent import ConsentPolicy, Decision
from chatgui.tools.toolbox import ToolBox


@pytest.mark.parametrize("expr, value", [("1 + 2 * 3", 7), ("(3 + 4) * 2 ** 10", 7168), ("2^10", 1024),
                                         ("7 // 2", 3), ("7 % 4", 3), ("-3 ** 2", -9), ("sqrt(16)", 4.0),
                                         ("round(pi, 2)", 3.14), ("max(1, 5, 3)", 5), ("factorial(10)", 3628800),
                                         ("1e3 / 4", 250.0), ("2 ** -1", 0.5)])
def test_calculator_computes(expr, value):
    assert calculate(expr) == value


@pytest.mark.parametrize("expr, why", [
    ("9 ** 9 ** 9", "exponents are limited"),
    ("10 ** 5000", "too large"),
    ("2 ** 4097", "too large"),
    ("(10 ** 1000) * (10 ** 1000)", "too large"),
    ("factorial(100000)", "limited to"),
    ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
    ("-" * 60 + "1", "nested too deeply"),
    ("-" * 300 + "1", "too long"),
    ("+".join(["1"] * 150), "too long"),
    ("1" * 600, "longer than"),
    ("__import__('os').system('true')", "not allowed"),
    ("__import__('os')", "unknown function"),
    ("().__class__", "not allowed"),
    ("open", "unknown name"),
    ("'a' * 10", "only numbers"),
    ("[1] * 10", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("1 / 0", "division by zero"),
    ("exp(1000)", "too large"),
    ("1 +", "not valid arithmetic"),
    ("sqrt(-1)", "math domain"),
])
def test_calculator_refuses_hostile_or_broken_input_quickly(expr, why):
    t0 = time.perf_counter()
    with pytest.raises(CalculatorError, match=why):
        calculate(expr)
    assert time.perf_counter() - t0 < 0.5


def test_clock_and_history_tools():
    fixed = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert builtin.run_clock({}, now=lambda: fixed) == "Wednesday 04 March 2026, 05:06:07 (UTC, UTC+0000)"
    seen = []
    run = builtin.history_runner(lambda q, n: seen.append((q, n)) or ["we talked about tea"])
    assert run({"query": "tea", "limit": 3}) == "[1] we talked about tea" and seen == [("tea", 3)]
    assert "No earlier message" in builtin.history_runner(lambda q, n: [])({"query": "x"})


def test_toolbox_runs_builtins_and_reports_failures_as_results():
    box = ToolBox()
    box.add_builtins(calculator=True, clock=True)
    assert [s.name for s in box.specs] == ["calculator", "current_datetime"]
    ok = box.call(ToolCall("c1", "calculator", {"expression": "6 * 7"}))
    assert (ok.content, ok.is_error) == ("42", False)
    bad = box.call(ToolCall("c2", "calculator", {"expression": "9 ** 9 ** 9"}))
    assert bad.is_error and "exponents are limited" in bad.content
    assert box.call(ToolCall("c3", "nope", {})).is_error
    box.add(ToolSpec("slow", source="builtin"), lambda args: time.sleep(30))
    import chatgui.tools.toolbox as tb
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    t0 = time.perf_counter()
    stopped = box.call(ToolCall("c4", "slow", {}), cancel)
    assert stopped.is_error and "stopped" in stopped.content and time.perf_counter() - t0 < 5
    assert tb.BUILTIN_TIMEOUT > 0
    box.close()


def test_consent_policy_decisions_and_settings_round_trip():
    calc = ToolSpec("calculator", source="builtin")
    read = ToolSpec("read_file", source="mcp:files")
    call = ToolCall("id1", "calculator", {})
    policy = ConsentPolicy()
    assert not policy.check(call, calc, "chat1")                       # nobody to ask: denied
    assert not policy.check(call, calc, "chat1", ask=lambda c, s: Decision.DENY)
    assert policy.check(call, calc, "chat1", ask=lambda c, s: Decision.ALLOW_ONCE)
    assert not policy.check(call, calc, "chat1")                       # once was once
    assert policy.check(call, calc, "chat1", ask=lambda c, s: "allow_chat")
    assert policy.check(call, calc, "chat1") and not policy.check(call, calc, "chat2")
    assert not policy.check(call, calc, "chat2", ask=lambda c, s: 1 / 0)   # a broken dialog runs nothing
    assert not policy.check(call, calc, "chat2", ask=lambda c, s: "maybe")
    assert policy.check(call, read, "chat2", ask=lambda c, s: Decision.ALLOW_ALWAYS)
    policy.allow_server("web")
    saved = policy.to_dict()
    assert saved == {"always": ["mcp:files/read_file"], "servers": ["web"]}
    again = ConsentPolicy.from_dict(saved)
    assert again.check(call, read, "any") and again.check(call, ToolSpec("fetch", source="mcp:web"), "any")
    assert not again.check(call, calc, "chat1")                        # per-chat allowances are not saved
    assert ConsentPolicy.from_dict({"always": "everything", "servers": [1, None]}).to_dict() == \
        {"always": [], "servers": []}


def test_records_round_trip():
    spec = ToolSpec("add", "Add.", {"type": "object"}, "builtin")
    assert ToolSpec.from_dict(spec.to_dict()) == spec
    assert ToolSpec.from_openai(spec.to_openai(), "builtin") == spec
    call = ToolCall("abcdefghi", "add", {"a": 1}, None)
    assert ToolCall.from_dict(call.to_dict()) == call
    assert call.to_openai()["function"]["arguments"] == '{"a": 1}'
    res = ToolResult("abcdefghi", "add", "1", False, 0.5)
    assert ToolResult.from_dict(res.to_dict()) == res
    assert PromptMessage.tool_result(res).to_wire() == {"role": "tool", "content": "1", "tool_call_id": "abcdefghi",
                                                        "name": "add"}

"""The tools one reply may call, and running them: every call gives a ToolResult, never an
exception (a failing tool's message goes back to the model and to the user as the result)."""
from __future__ import annotations

import concurrent.futures
import time
from typing import Callable

from chatgui.common.tools import ToolCall, ToolResult, ToolSpec

from . import builtin
from .consent import ConsentPolicy

BUILTIN_TIMEOUT = 10.0
MAX_RESULT_CHARS = 200_000


class ToolBox:
    def __init__(self):
        self._tools: dict[str, tuple[ToolSpec, Callable[[dict], str]]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatgui-tool")

    def add(self, spec: ToolSpec, run: Callable[[dict], str]) -> ToolSpec:
        """Add a tool; a name already taken gets the source's name in front (two servers may
        both have a `search`). Returns the spec as the model will see it."""
        if spec.name in self._tools:
            prefix = spec.source.split(":", 1)[-1]
            spec = ToolSpec(f"{prefix}_{spec.name}", spec.description, spec.parameters, spec.source)
        self._tools[spec.name] = (spec, run)
        return spec

    def add_builtins(self, calculator: bool = False, clock: bool = False, history_search=None) -> None:
        """The built-in tools that are turned on. history_search(query, limit) -> excerpts."""
        if calculator:
            self.add(builtin.CALCULATOR, builtin.run_calculator)
        if clock:
            self.add(builtin.CLOCK, builtin.run_clock)
        if history_search is not None:
            self.add(builtin.HISTORY, builtin.history_runner(history_search))

    def add_mcp(self, hub, servers=None) -> list[str]:
        """Every tool of the hub's servers (or of those named). Returns the errors of servers
        that could not be listed, one sentence each."""
        from .mcp_client import McpError

        errors = []
        for server in servers or hub.server_names():
            try:
                specs = hub.tools(server)
            except McpError as e:
                errors.append(str(e))
                continue
            for spec in specs:
                self.add(spec, lambda args, s=server, n=spec.name: hub.call(s, n, args))
        return errors

    @property
    def specs(self) -> list[ToolSpec]:
        return [spec for spec, _ in self._tools.values()]

    def spec(self, name: str) -> ToolSpec | None:
        entry = self._tools.get(name)
        return entry[0] if entry else None

    def call(self, call: ToolCall, cancel=None) -> ToolResult:
        """Run a call (already consented to). Built-in tools get BUILTIN_TIMEOUT; MCP calls have
        the hub's own. cancel: an Event; a call still running when it is set is abandoned."""
        entry = self._tools.get(call.name)
        t0 = time.perf_counter()

        def result(text: str, error: bool = False) -> ToolResult:
            return ToolResult(call.id, call.name, text[:MAX_RESULT_CHARS], error, time.perf_counter() - t0)
        if entry is None:
            return result(f"There is no tool named {call.name!r}.", True)
        if call.error:
            return result(f"The call could not be used: {call.error}.", True)
        spec, run = entry
        future = self._pool.submit(run, dict(call.arguments))
        limit = BUILTIN_TIMEOUT if spec.source == "builtin" else None
        deadline = None if limit is None else t0 + limit
        while True:
            try:
                return result(str(future.result(timeout=0.1)))
            except concurrent.futures.TimeoutError:
                if cancel is not None and cancel.is_set():
                    future.cancel()
                    return result("The call was stopped.", True)
                if deadline is not None and time.perf_counter() > deadline:
                    return result(f"{call.name} did not finish within {limit:g} s.", True)
            except Exception as e:   # noqa: BLE001 - the tool's failure is its result
                return result(str(e) or type(e).__name__, True)

    def consent_gate(self, policy: ConsentPolicy, chat_id: str | None = None, ask=None):
        """The loop's consent callback: consent(call) -> bool, through the policy."""
        def consent(call: ToolCall) -> bool:
            spec = self.spec(call.name)
            return spec is not None and policy.check(call, spec, chat_id, ask)
        return consent

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

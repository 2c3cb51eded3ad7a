"""Consent: no tool runs unless the user allowed it. A Qt-free policy the tool loop consults
before every call; the window asks the user through the `ask` callback it gives.

    policy = ConsentPolicy.from_dict(settings.get("tool_consent"))
    allowed = policy.check(call, spec, chat_id, ask)   # ask(call, spec) -> Decision, or None: nobody to ask
    settings["tool_consent"] = policy.to_dict()

A tool is known by its source and name ("builtin/calculator", "mcp:files/read_file"). Allowed
without asking: a tool allowed "always", any tool of a server on the allow list, and, within
one chat, a tool allowed "for this chat". Everything else asks; with nobody to ask, it is denied.
"""
from __future__ import annotations

import enum
import threading

from chatgui.common.tools import ToolCall, ToolSpec


class Decision(str, enum.Enum):
    ALLOW_ONCE = "allow_once"      # this call only
    ALLOW_CHAT = "allow_chat"      # this tool, for the rest of this chat
    ALLOW_ALWAYS = "allow_always"  # this tool, from now on (saved in the settings)
    DENY = "deny"                  # not this call


def tool_key(spec: ToolSpec) -> str:
    return f"{spec.source}/{spec.name}"


def server_of(spec: ToolSpec) -> str | None:
    return spec.source[4:] if spec.source.startswith("mcp:") else None


class ConsentPolicy:
    def __init__(self, always=(), servers=()):
        self.always: set[str] = set(always)        # tool keys allowed for good
        self.servers: set[str] = set(servers)      # MCP servers whose every tool is allowed
        self._per_chat: set[tuple[str, str]] = set()   # (chat id, tool key); not saved
        self._lock = threading.Lock()

    def is_allowed(self, spec: ToolSpec, chat_id: str | None = None) -> bool:
        key = tool_key(spec)
        with self._lock:
            return key in self.always or server_of(spec) in self.servers or (str(chat_id), key) in self._per_chat

    def record(self, spec: ToolSpec, decision: Decision, chat_id: str | None = None) -> bool:
        """Remember a decision; returns whether this call may run."""
        decision = Decision(decision)
        key = tool_key(spec)
        with self._lock:
            if decision is Decision.ALLOW_ALWAYS:
                self.always.add(key)
            elif decision is Decision.ALLOW_CHAT:
                self._per_chat.add((str(chat_id), key))
        return decision is not Decision.DENY

    def check(self, call: ToolCall, spec: ToolSpec, chat_id: str | None = None, ask=None) -> bool:
        """Whether this call may run: allowed already, or the user allows it now through
        ask(call, spec) -> Decision. An ask that fails or gives no answer is a denial."""
        if self.is_allowed(spec, chat_id):
            return True
        if ask is None:
            return False
        try:
            decision = ask(call, spec)
        except Exception:   # noqa: BLE001 - a broken dialog must not run the tool
            return False
        if decision is None:
            return False
        try:
            return self.record(spec, Decision(decision), chat_id)
        except ValueError:
            return False

    def allow_server(self, server: str, allowed: bool = True) -> None:
        with self._lock:
            (self.servers.add if allowed else self.servers.discard)(server)

    def forget(self, spec: ToolSpec) -> None:
        key = tool_key(spec)
        with self._lock:
            self.always.discard(key)
            self._per_chat = {p for p in self._per_chat if p[1] != key}

    def to_dict(self) -> dict:
        with self._lock:
            return {"always": sorted(self.always), "servers": sorted(self.servers)}

    @classmethod
    def from_dict(cls, d) -> "ConsentPolicy":
        """From saved settings; anything of the wrong shape is left out (never allows more)."""
        d = d if isinstance(d, dict) else {}
        always = [k for k in d.get("always") or () if isinstance(k, str)] if isinstance(d.get("always"), list) else []
        servers = [s for s in d.get("servers") or () if isinstance(s, str)] if isinstance(d.get("servers"), list) else []
        return cls(always, servers)

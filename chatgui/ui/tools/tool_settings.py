"""The Tools settings, kept in AppSettings.tools as a plain dict: which built-in tools are on,
the MCP servers (in the `mcp.json` layout), the consent choices (ConsentPolicy's form, with
the per-server allow list) and the most rounds of calls one reply may make. No Qt.

Reading never fails: a value of the wrong shape falls back to its default, field by field, and
a server entry that does not parse is left out (never allows more than was saved)."""
from __future__ import annotations

from dataclasses import dataclass, field

from chatgui.tools.consent import ConsentPolicy
from chatgui.tools.mcp_client import McpServerConfig, config_to_json, parse_mcp_config

MAX_ROUNDS_LIMIT = 20
DEFAULT_MAX_ROUNDS = 5     # as engine/tool_loop's (not imported here: the engine loads torch)


@dataclass
class ToolSettings:
    calculator: bool = False
    clock: bool = False
    history: bool = False            # search chat history
    servers: list[McpServerConfig] = field(default_factory=list)
    consent: dict = field(default_factory=dict)   # ConsentPolicy.to_dict()
    max_rounds: int = DEFAULT_MAX_ROUNDS

    def any_enabled(self) -> bool:
        return self.calculator or self.clock or self.history or any(s.enabled for s in self.servers)

    def policy(self) -> ConsentPolicy:
        return ConsentPolicy.from_dict(self.consent)

    def to_dict(self) -> dict:
        return {"calculator": self.calculator, "clock": self.clock, "history": self.history,
                "mcp": config_to_json(self.servers), "consent": dict(self.consent), "max_rounds": self.max_rounds}

    @classmethod
    def from_dict(cls, d) -> "ToolSettings":
        out = cls()
        d = d if isinstance(d, dict) else {}
        for name in ("calculator", "clock", "history"):
            if isinstance(d.get(name), bool):
                setattr(out, name, d[name])
        rounds = d.get("max_rounds")
        if isinstance(rounds, int) and not isinstance(rounds, bool) and 1 <= rounds <= MAX_ROUNDS_LIMIT:
            out.max_rounds = rounds
        out.consent = ConsentPolicy.from_dict(d.get("consent")).to_dict()
        servers = (d.get("mcp") or {}).get("mcpServers") if isinstance(d.get("mcp"), dict) else None
        if isinstance(servers, dict):
            for name, entry in servers.items():
                try:
                    out.servers.extend(parse_mcp_config({"mcpServers": {name: entry}}))
                except ValueError:
                    continue
        return out

"""The MCP client against a real stdio MCP server that the test writes with the SDK's MCPServer
(FastMCP in the 1.x SDK): listed, called with consent, refused without, and a server that dies or
hangs mid-call gives a plain error and leaves the caller fine."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.tools import ToolCall
from chatgui.tools.consent import ConsentPolicy, Decision
from chatgui.tools.mcp_client import McpError, McpHub, McpServerConfig, config_to_json, parse_mcp_config
from chatgui.tools.toolbox import ToolBox

SERVER = textwrap.dedent('''
    import os, sys, time
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("test-tools")

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @app.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    @app.tool()
    def crash(seconds: float = 0.3) -> str:
        """Dies in the middle of the call."""
        time.sleep(seconds)
        os._exit(3)

    @app.prompt()
    def greet(name: str) -> str:
        """A greeting."""
        return f"Say hello to {name}"

    @app.resource("notes://today")
    def today() -> str:
        return "buy milk"

    if __name__ == "__main__":
        if "--hang" in sys.argv:
            time.sleep(600)
        if "--http" in sys.argv:
            app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[-1]))
        else:
            app.run("stdio")
''')


@pytest.fixture(scope="module")
def server_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("mcp") / "test_server.py"
    path.write_text(SERVER)
    return path


@pytest.fixture(scope="module")
def hub(server_script):
    config = {"mcpServers": {"test": {"command": sys.executable, "args": [str(server_script)]},
                             "hangs": {"command": sys.executable, "args": [str(server_script), "--hang"]},
                             "missing": {"command": "/nonexistent/mcp-server"}}}
    h = McpHub(parse_mcp_config(config), start_timeout=20, call_timeout=20)
    yield h
    h.close()


def test_config_in_the_mcp_json_layout():
    configs = parse_mcp_config('{"mcpServers": {"files": {"command": "npx", "args": ["-y", "srv", "/tmp"], '
                               '"env": {"A": "1"}}, "web": {"url": "https://example.org/mcp", '
                               '"headers": {"Authorization": "Bearer x"}}}}')
    assert [(c.name, c.transport) for c in configs] == [("files", "stdio"), ("web", "http")]
    assert configs[0].args == ("-y", "srv", "/tmp") and configs[1].headers == {"Authorization": "Bearer x"}
    assert parse_mcp_config(config_to_json(configs)) == configs
    for bad, why in [("[]", "mcpServers"), ("{", "not valid JSON"), ({"mcpServers": {"x": {}}}, "'command'"),
                     ({"mcpServers": {"x": {"command": "a", "args": "b"}}}, "'args'"),
                     ({"mcpServers": {"x": {"url": "file:///etc/passwd"}}}, "http"),
                     ({"mcpServers": {"x": {"url": "http://h", "headers": {"a": 1}}}}, "'headers'")]:
        with pytest.raises(ValueError, match=why):
            parse_mcp_config(bad)


def test_tools_prompts_and_resources_are_listed(hub):
    tools = hub.tools("test")
    assert sorted(t.name for t in tools) == ["add", "crash", "shout"]
    add = next(t for t in tools if t.name == "add")
    assert add.source == "mcp:test" and add.parameters["required"] == ["a", "b"]
    assert hub.prompts("test")[0]["name"] == "greet"
    assert hub.get_prompt("test", "greet", {"name": "Bo"}) == [PromptMessage.user("Say hello to Bo")]
    assert hub.resources("test")[0]["uri"] == "notes://today"
    assert hub.read_resource("test", "notes://today") == "buy milk"


def test_calls_run_with_consent_only(hub):
    box = ToolBox()
    errors = box.add_mcp(hub, ["test"])
    assert errors == []
    call = ToolCall("abcdefghi", "add", {"a": 2, "b": 40})
    asked = []
    deny = box.consent_gate(ConsentPolicy(), "chat", ask=lambda c, s: asked.append((c, s)) or Decision.DENY)
    assert not deny(call) and asked[0][1].source == "mcp:test"
    assert not box.consent_gate(ConsentPolicy(), "chat")(call)          # nobody to ask: nothing runs
    policy = ConsentPolicy()
    allow = box.consent_gate(policy, "chat", ask=lambda c, s: Decision.ALLOW_CHAT)
    assert allow(call)
    result = box.call(call)
    assert (result.content, result.is_error) == ("42", False)
    assert box.consent_gate(policy, "chat")(ToolCall("b" * 9, "add", {"a": 1, "b": 1}))   # this chat: allowed
    assert box.call(ToolCall("c" * 9, "shout", {"text": "hi"})).content == "HI"
    bad = box.call(ToolCall("d" * 9, "add", {"a": "x"}))
    assert bad.is_error and "add" in bad.content


def test_a_server_killed_mid_call_gives_a_plain_error_and_restarts(hub):
    t0 = time.perf_counter()
    with pytest.raises(McpError, match="stopped during the call of 'crash'|failed the call of 'crash'"):
        hub.call("test", "crash", {"seconds": 0.2})
    assert time.perf_counter() - t0 < 15
    assert hub.call("test", "add", {"a": 1, "b": 2}) == "3"             # started again on the next use


def test_a_hanging_or_missing_server_times_out_with_a_plain_message(hub):
    hub.start_timeout = 2
    try:
        t0 = time.perf_counter()
        with pytest.raises(McpError, match="'hangs' did not start within 2 s"):
            hub.tools("hangs")
        assert time.perf_counter() - t0 < 10
        with pytest.raises(McpError, match="'missing' could not be started"):
            hub.tools("missing")
        with pytest.raises(McpError, match="no MCP server named"):
            hub.tools("nope")
        assert sorted(t.name for t in hub.tools()) == ["add", "crash", "shout"]    # the others are skipped
    finally:
        hub.start_timeout = 20


def test_a_call_that_hangs_times_out(server_script):
    h = McpHub([McpServerConfig("test", sys.executable, (str(server_script),))], call_timeout=1.0)
    try:
        with pytest.raises(McpError, match="did not answer the call of 'crash' within 1 s"):
            h.call("test", "crash", {"seconds": 30})
        assert h.call("test", "add", {"a": 2, "b": 2}) == "4"
    finally:
        h.close()


def test_a_streamable_http_server(server_script):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(server_script), "--http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        config = {"mcpServers": {"web": {"url": f"http://127.0.0.1:{port}/mcp",
                                         "headers": {"Authorization": "Bearer test"}}}}
        h = McpHub(parse_mcp_config(config), start_timeout=20, call_timeout=20)
        try:
            assert sorted(t.name for t in h.tools("web")) == ["add", "crash", "shout"]
            assert h.call("web", "add", {"a": 20, "b": 22}) == "42"
        finally:
            h.close()
    finally:
        proc.kill()
        proc.wait()

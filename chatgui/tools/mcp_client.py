"""MCP servers as tools: the official `mcp` SDK behind a synchronous facade. No Qt.

    hub = McpHub(parse_mcp_config(json.load(open("mcp.json"))))   # LM Studio / Claude Desktop layout
    hub.tools()                         # [ToolSpec(source="mcp:<server>"), ...]; starts servers on demand
    hub.call("files", "read_file", {"path": "a.txt"})   # text, or McpError with a plain message
    hub.close()

The SDK is asyncio; its loop runs in a thread of its own ("chatgui-mcp"), so the model's runner
thread, the server and the window can call it like a function. Each server's session lives in a
task of that loop (the SDK's context managers must be entered and left by one task). Every
request has a timeout; a server that crashes, hangs or answers nonsense is reported in one
sentence and restarted on the next use, and never takes the caller down.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from dataclasses import dataclass, field

from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.tools import ToolSpec

log = logging.getLogger(__name__)
START_TIMEOUT = 30.0
CALL_TIMEOUT = 60.0
MAX_RESULT_CHARS = 200_000     # what a tool gives the model back, at most


class McpError(RuntimeError):
    """A server could not be started, or a request failed: the message says so plainly."""


@dataclass(frozen=True)
class McpServerConfig:
    """One server: a command to start (stdio) or a URL (streamable HTTP)."""
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    url: str | None = None
    headers: dict = field(default_factory=dict)
    enabled: bool = True

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def to_dict(self) -> dict:
        if self.url:
            d = {"url": self.url, **({"headers": dict(self.headers)} if self.headers else {})}
        else:
            d = {"command": self.command, "args": list(self.args), **({"env": dict(self.env)} if self.env else {})}
        if not self.enabled:
            d["disabled"] = True
        return d

    @classmethod
    def from_dict(cls, name: str, d) -> "McpServerConfig":
        if not isinstance(name, str) or not name.strip():
            raise ValueError("an MCP server needs a name")
        if not isinstance(d, dict):
            raise ValueError(f"MCP server {name!r}: its entry must be an object")
        enabled = not d.get("disabled", False)
        if d.get("url") is not None:
            url, headers = d["url"], d.get("headers") or {}
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"MCP server {name!r}: 'url' must be an http(s) address")
            if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in headers.items()):
                raise ValueError(f"MCP server {name!r}: 'headers' must map names to texts")
            return cls(name, url=url, headers=dict(headers), enabled=enabled)
        command, args, env = d.get("command"), d.get("args") or [], d.get("env") or {}
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f"MCP server {name!r}: give either 'command' (and 'args') or 'url'")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError(f"MCP server {name!r}: 'args' must be a list of texts")
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError(f"MCP server {name!r}: 'env' must map names to texts")
        return cls(name, command=command, args=tuple(args), env=dict(env), enabled=enabled)


def parse_mcp_config(data) -> list[McpServerConfig]:
    """Servers from the `mcp.json` layout ({"mcpServers": {name: {command, args, env} | {url,
    headers}}}), given as a dict or its JSON text. ValueError names the first bad entry."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise ValueError(f"the MCP configuration is not valid JSON ({e})") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ValueError("the MCP configuration must be an object with 'mcpServers'")
    return [McpServerConfig.from_dict(name, entry) for name, entry in servers.items()]


def config_to_json(configs: list[McpServerConfig]) -> dict:
    return {"mcpServers": {c.name: c.to_dict() for c in configs}}


class _Connection:
    """One running server: its session lives in `task` until `stop` is set."""

    def __init__(self, config: McpServerConfig):
        self.config = config
        self.client = None
        self.ready: asyncio.Future | None = None
        self.stop: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.failure: str | None = None

    def _transport(self):
        from mcp.client.stdio import StdioServerParameters

        c = self.config
        if c.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers=dict(c.headers), timeout=httpx2.Timeout(CALL_TIMEOUT, read=CALL_TIMEOUT))
            return streamable_http_client(c.url, http_client=http)
        return StdioServerParameters(command=c.command, args=list(c.args), env=dict(c.env) or None)

    async def run(self) -> None:
        from mcp import Client

        try:
            async with Client(self._transport()) as client:
                self.client = client
                self.ready.set_result(None)
                await self.stop.wait()
        except BaseException as e:   # noqa: BLE001 - whatever the SDK or the process did: one sentence
            self.failure = _plain(e)
            if isinstance(e, asyncio.CancelledError):
                self.ready.cancel()            # given up on (a start that timed out): nobody waits
                raise
            if not self.ready.done():
                self.ready.set_exception(McpError(f"The MCP server {self.config.name!r} could not be started: "
                                                  f"{self.failure}"))
        finally:
            self.client = None

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done() and self.client is not None


def _connection_lost(e: BaseException) -> bool:
    """Whether the error means the server is gone (its process died, the stream closed)."""
    import anyio
    from mcp_types import CONNECTION_CLOSED

    error = getattr(e, "error", None)
    return (getattr(error, "code", None) == CONNECTION_CLOSED or
            isinstance(e, (anyio.ClosedResourceError, anyio.BrokenResourceError, EOFError, ConnectionError)))


def _plain(e: BaseException) -> str:
    """One readable sentence for an exception, unwrapping task groups' exception groups."""
    while isinstance(getattr(e, "exceptions", None), tuple) and e.exceptions:   # an exception group
        e = e.exceptions[0]
    text = str(e).strip() or type(e).__name__
    return text if len(text) < 300 else text[:300] + "..."


class McpHub:
    """The configured MCP servers, started on first use. Thread-safe; every method blocks at most
    about its timeout and raises McpError (a plain message) on any failure."""

    def __init__(self, configs: list[McpServerConfig] = (), start_timeout: float = START_TIMEOUT,
                 call_timeout: float = CALL_TIMEOUT):
        self.configs = {c.name: c for c in configs}
        self.start_timeout, self.call_timeout = start_timeout, call_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[str, _Connection] = {}
        self._lock = threading.Lock()

    # -- the loop's thread --------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="chatgui-mcp", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def _run(self, coro, timeout: float):
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout + 2.0)      # the coroutine has its own timeout; this is the backstop
        except TimeoutError:
            future.cancel()
            raise McpError("The MCP server did not answer in time.") from None
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            # its start was given up on meanwhile (a start timeout elsewhere cancels the wait)
            raise McpError("The MCP server stopped before it answered.") from None

    # -- connections --------------------------------------------------------------------------
    async def _connection(self, name: str) -> _Connection:
        config = self.configs.get(name)
        if config is None:
            raise McpError(f"There is no MCP server named {name!r}.")
        if not config.enabled:
            raise McpError(f"The MCP server {name!r} is turned off.")
        conn = self._connections.get(name)
        if conn is not None and conn.alive:
            return conn
        if conn is not None and conn.ready is not None and not conn.ready.done():
            await asyncio.wait_for(asyncio.shield(conn.ready), self.start_timeout)   # starting already
            return conn
        conn = _Connection(config)
        loop = asyncio.get_running_loop()
        conn.ready, conn.stop = loop.create_future(), asyncio.Event()
        conn.task = loop.create_task(conn.run())
        self._connections[name] = conn
        try:
            await asyncio.wait_for(asyncio.shield(conn.ready), self.start_timeout)
        except asyncio.TimeoutError:
            conn.task.cancel()
            raise McpError(f"The MCP server {name!r} did not start within {self.start_timeout:g} s.") from None
        return conn

    async def _request(self, name: str, what: str, action, timeout: float):
        conn = await self._connection(name)
        try:
            return await asyncio.wait_for(action(conn.client), timeout)
        except asyncio.TimeoutError:
            await self._drop(conn)           # a hung server is restarted next time
            raise McpError(f"The MCP server {name!r} did not answer {what} within {timeout:g} s.") from None
        except McpError:
            raise
        except Exception as e:   # noqa: BLE001 - a crash mid-call, a protocol error, ...
            if not conn.alive or _connection_lost(e):
                await self._drop(conn)
                raise McpError(f"The MCP server {name!r} stopped during {what}: {_plain(e)}") from None
            raise McpError(f"The MCP server {name!r} failed {what}: {_plain(e)}") from None

    async def _drop(self, conn: _Connection) -> None:
        if self._connections.get(conn.config.name) is conn:
            del self._connections[conn.config.name]
        if conn.stop is not None:
            conn.stop.set()
        if conn.task is not None and not conn.task.done():
            try:
                await asyncio.wait_for(asyncio.shield(conn.task), 5.0)
            except BaseException:  # noqa: BLE001 - it is going away either way
                conn.task.cancel()

    # -- the facade ---------------------------------------------------------------------------
    def server_names(self) -> list[str]:
        return [n for n, c in self.configs.items() if c.enabled]

    def tools(self, server: str | None = None) -> list[ToolSpec]:
        """Tools of one server, or of every enabled one (a server that fails is left out and
        logged; ask it alone to get its error)."""
        if server is None:
            out = []
            for name in self.server_names():
                try:
                    out.extend(self.tools(name))
                except McpError as e:
                    log.warning("%s", e)
            return out

        async def listing(client):
            result = await client.list_tools()
            return [ToolSpec(t.name, t.description or "", dict(t.input_schema or {"type": "object"}),
                             f"mcp:{server}") for t in result.tools]
        return self._run(self._request(server, "the list of its tools", listing, self.start_timeout),
                         self.start_timeout * 2)

    def call(self, server: str, tool: str, arguments: dict, timeout: float | None = None) -> str:
        """The tool's result as text. McpError when the call fails or the tool reports an error."""
        timeout = timeout or self.call_timeout

        async def calling(client):
            return await client.call_tool(tool, arguments)
        result = self._run(self._request(server, f"the call of {tool!r}", calling, timeout),
                           timeout + self.start_timeout)
        text = _content_text(result.content)
        if not text and getattr(result, "structured_content", None) is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        if getattr(result, "is_error", False):
            raise McpError(f"{tool} failed: {text or 'the server gave no reason'}")
        return text[:MAX_RESULT_CHARS]

    def prompts(self, server: str) -> list[dict]:
        async def listing(client):
            result = await client.list_prompts()
            return [{"name": p.name, "description": p.description or "",
                     "arguments": [{"name": a.name, "required": bool(a.required), "description": a.description or ""}
                                   for a in (p.arguments or [])]} for p in result.prompts]
        return self._run(self._request(server, "the list of its prompts", listing, self.call_timeout),
                         self.call_timeout + self.start_timeout)

    def get_prompt(self, server: str, name: str, arguments: dict | None = None) -> list[PromptMessage]:
        """A prompt's messages as a model is sent them (their text content)."""
        async def getting(client):
            result = await client.get_prompt(name, {k: str(v) for k, v in (arguments or {}).items()})
            return [PromptMessage(Role(m.role), _content_text([m.content])) for m in result.messages]
        return self._run(self._request(server, f"the prompt {name!r}", getting, self.call_timeout),
                         self.call_timeout + self.start_timeout)

    def resources(self, server: str) -> list[dict]:
        async def listing(client):
            result = await client.list_resources()
            return [{"uri": str(r.uri), "name": r.name, "description": r.description or "",
                     "mime_type": r.mime_type or ""} for r in result.resources]
        return self._run(self._request(server, "the list of its resources", listing, self.call_timeout),
                         self.call_timeout + self.start_timeout)

    def read_resource(self, server: str, uri: str) -> str:
        async def reading(client):
            result = await client.read_resource(uri)
            return "\n".join(getattr(c, "text", None) or f"[{getattr(c, 'mime_type', '') or 'binary'} content]"
                             for c in result.contents)
        return self._run(self._request(server, f"the resource {uri!r}", reading, self.call_timeout),
                         self.call_timeout + self.start_timeout)[:MAX_RESULT_CHARS]

    def stop(self, server: str) -> None:
        """Stop one server (it starts again on its next use)."""
        conn = self._connections.get(server)
        if conn is not None and self._loop is not None:
            try:
                self._run(self._drop(conn), 10.0)
            except McpError:
                pass

    def close(self) -> None:
        """Stop every server and the loop's thread."""
        if self._loop is None:
            return
        for name in list(self._connections):
            self.stop(name)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        self._loop.close() if not self._loop.is_running() else None
        self._loop = None


def _content_text(blocks) -> str:
    """The text of MCP content blocks; other kinds are named, not dropped silently."""
    parts = []
    for b in blocks or ():
        kind = getattr(b, "type", "")
        if kind == "text":
            parts.append(b.text)
        elif kind == "resource":
            res = getattr(b, "resource", None)
            parts.append(getattr(res, "text", None) or f"[resource {getattr(res, 'uri', '')}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    return "\n".join(parts)

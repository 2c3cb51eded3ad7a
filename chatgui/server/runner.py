"""Running the server: uvicorn on a background thread, so the desktop app (or the CLI, or a
test) can start and stop it in-process.

    handle = start_server(model, port=0)      # 0: any free port
    handle.url                                 # "http://127.0.0.1:53187/v1"
    handle.stop()
"""
from __future__ import annotations

import copy
import ipaddress
import socket
import sys
import threading
import time

import uvicorn
import uvicorn.config

from .app import ServedModel, build_app
from .connections import DEFAULT_MAX_CONNECTIONS, DEFAULT_READ_TIMEOUT, BoundedH11Protocol
from .worker import GenerationWorker

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_WAITING = 8


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket. We bind it ourselves, rather than let uvicorn, so that port 0 gives a
    port we can report before the first request."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":   # on Windows SO_REUSEADDR would let another process steal the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1" if host != "::" else "[::1]"
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


class BackgroundServer:
    """Any ASGI app served by uvicorn on its own thread."""

    def __init__(self, app, host: str = DEFAULT_HOST, port: int = 0, *, access_log: bool = False,
                 log_level: str = "warning", own_logging: bool = False, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS):
        self.host = host
        self._sock = bind_socket(host, port)
        self.port = self._sock.getsockname()[1]
        # In-process, leave the host application's logging alone (log_config=None). The CLI
        # keeps uvicorn's, but with the access log on stderr: stdout carries only the URL.
        log_config = None
        if own_logging:
            log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
            log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
        # Fixed h11 + asyncio rather than "auto": the same behaviour whether or not httptools or
        # uvloop happen to be installed, and known modules for a frozen (PyInstaller) build.
        # h11 with the read timeout and connection bound uvicorn lacks (connections.py).
        http = BoundedH11Protocol.with_limits(read_timeout, max_connections)
        config = uvicorn.Config(app, http=http, loop="asyncio", lifespan="off", ws="none", access_log=access_log,
                                log_level=log_level, timeout_graceful_shutdown=3, log_config=log_config)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"chatgui-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise OSError(f"the server on {host}:{self.port} did not start")
            time.sleep(0.01)

    @property
    def base(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()


class ServerHandle:
    """A running chatgui server. `url` is the OpenAI base URL (ending in /v1)."""

    def __init__(self, http: BackgroundServer, worker: GenerationWorker, served: ServedModel):
        self._http, self._worker, self._served = http, worker, served
        self.host, self.port = http.host, http.port
        self.url = http.base + "/v1"
        self.model_name = served.id

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn (not counting the one being answered)."""
        return self._worker.waiting

    @property
    def busy(self) -> bool:
        return self._worker.busy

    def is_alive(self) -> bool:
        return self._http.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel every request, close the port, end the threads. Safe to call twice."""
        self._worker.stop(timeout)
        self._http.stop(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(url={self.url!r}, model={self.model_name!r})"


def start_server(model_or_loader, host: str = DEFAULT_HOST, port: int = 0, *, model_name: str | None = None,
                 api_key: str | None = None, max_waiting: int = DEFAULT_MAX_WAITING,
                 access_log: bool = False, own_logging: bool = False, allow_hosts=(), allow_origins=(),
                 read_timeout: float = DEFAULT_READ_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> ServerHandle:
    """Serve a model (a ServableBackend such as ChatModel, or a no-argument callable returning one,
    called here) on
    host:port. Returns once the port is listening; raises OSError if it cannot be bound.

    api_key: if given, requests must send `Authorization: Bearer <api_key>`.
    allow_hosts / allow_origins: Host names and browser origins allowed besides the safe
    defaults (loopback names and the bound address; no origin): see guard.py.
    read_timeout / max_connections: see connections.py.
    """
    model = model_or_loader() if callable(model_or_loader) else model_or_loader   # a backend is not callable
    served = ServedModel(model, model_name)
    worker = GenerationWorker(model, max_waiting=max_waiting)
    try:
        app = build_app(worker, served, api_key, bound_host=host, allow_hosts=allow_hosts,
                        allow_origins=allow_origins)
        http = BackgroundServer(app, host, port, access_log=access_log, log_level="info" if access_log else "warning",
                                own_logging=own_logging, read_timeout=read_timeout, max_connections=max_connections)
    except BaseException:
        worker.stop()
        raise
    return ServerHandle(http, worker, served)

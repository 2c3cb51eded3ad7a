"""Who may talk to the server: the checks that keep web pages away from the local model.

A page in the user's browser can send requests to 127.0.0.1 (a text/plain POST needs no CORS
preflight), and through DNS rebinding (a name of the attacker's that first resolves to their
host, then to 127.0.0.1) it can even read the replies: the hole Ollama closed as CVE-2024-28224.
So, by default:

- Host must be a loopback name or the address the server is bound to (421 otherwise): a
  rebound page sends its own host name. `allow_hosts` adds names ("*": any).
- A request with an Origin header (only browsers send one) is refused (403) unless
  `allow_origins` names that origin ("*": any). Allowed origins get CORS headers and their
  preflight (OPTIONS) answered; others get none.
- A POST body must be declared application/json (415 otherwise): that is never a "simple"
  request, so a browser cannot send it cross-origin without a preflight we refuse.

A pure ASGI middleware (not BaseHTTPMiddleware), so streaming and disconnects pass through.
"""
from __future__ import annotations

import ipaddress
import json

from chatgui.common.io import is_loopback_host

from .protocol import ApiError

ALL_INTERFACES = frozenset({"", "0.0.0.0", "::"})
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = ("Content-Type",)   # and the headers the credential check reads (credential_headers)


def host_name(header: str) -> str:
    """The name in a Host header, without its port, brackets or case: "[::1]:8000" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() else header


def _configured_name(name: str) -> str:
    """A host name or address as given on the command line ("fe80::1", "[fe80::1]", "box:8000")."""
    bare = name.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return host_name(name)


class AccessGuard:
    def __init__(self, app, *, bound_host: str = "127.0.0.1", allow_hosts=(), allow_origins=(),
                 credential_headers=()):
        """credential_headers: the request headers the app inside checks credentials in (auth.py's
        BearerAuth.HEADERS), which an allowed page's preflight is told it may send."""
        self.app = app
        self.cors_headers = ", ".join(dict.fromkeys((*credential_headers, *CORS_HEADERS)))
        self.hosts = {_configured_name(h) for h in allow_hosts if h and h != "*"}
        self.any_host = "*" in allow_hosts
        if bound_host not in ALL_INTERFACES:
            self.hosts.add(_configured_name(bound_host))
        self.origins = {o.rstrip("/").lower() for o in allow_origins if o and o != "*"}
        self.any_origin = "*" in allow_origins

    def host_allowed(self, header: str | None) -> bool:
        if header is None:     # HTTP/1.0 without Host: no browser sends that
            return True
        name = host_name(header)
        return self.any_host or is_loopback_host(name) or name in self.hosts

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/").lower() in self.origins

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        if not self.host_allowed(headers.get("host")):
            return await refuse(send, ApiError(
                421, f"This server does not answer to the host name {headers['host']!r} (a web page may be "
                     "trying to reach it). Start it with --allow-host to allow that name.", code="host_not_allowed"))
        origin = headers.get("origin")
        cors = {}
        if origin is not None:
            if not self.origin_allowed(origin):
                return await refuse(send, ApiError(
                    403, f"Requests from web pages ({origin}) are refused. Start the server with "
                         "--allow-origin to allow that origin.", code="origin_not_allowed"))
            cors = {"access-control-allow-origin": origin, "vary": "Origin"}
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                return await _send(send, 204, {**cors, "access-control-allow-methods": CORS_METHODS,
                                               "access-control-allow-headers": self.cors_headers,
                                               "access-control-max-age": "600"}, b"")
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return await refuse(send, ApiError(
                    415, f"The request body must be sent as 'Content-Type: application/json', not "
                         f"{kind or 'without a type'!r}.", code="unsupported_media_type"), cors)
        if not cors:
            return await self.app(scope, receive, send)

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k.encode(), v.encode()) for k, v in cors.items())]}
            await send(message)

        return await self.app(scope, receive, send_with_cors)


async def refuse(send, error: ApiError, extra: dict | None = None) -> None:
    body = json.dumps(error.body()).encode()
    await _send(send, error.status, {"content-type": "application/json", **(extra or {})}, body)


async def _send(send, status: int, headers: dict, body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

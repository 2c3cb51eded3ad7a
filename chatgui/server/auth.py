"""The server's API key (`--api-key`): every request but the health check must carry
`Authorization: Bearer <key>`, or it is answered 401 before any route runs.

A pure ASGI middleware like the access guard (guard.py), inside it: the guard first refuses
foreign hosts and web pages and answers CORS preflights (which never carry credentials), then
this checks the key, so an allowed page's 401 still gets its CORS headers. Unknown paths are
refused too (401, not 404): a caller without the key learns nothing about the routes.
The comparison takes the same time however much of the key matches.
"""
from __future__ import annotations

import secrets

from .guard import refuse
from .protocol import ApiError

OPEN_PATHS = frozenset({"/health"})   # (a load balancer's probe holds no key)


class BearerAuth:
    HEADERS = ("Authorization",)   # the request headers the key is read from (the guard lets pages send them)

    def __init__(self, app, api_key: str | None, open_paths=OPEN_PATHS):
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.open_paths = frozenset(open_paths)

    def authorized(self, scope) -> bool:
        if self.expected is None or scope["path"] in self.open_paths:
            return True
        given = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
        return secrets.compare_digest(given, self.expected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.authorized(scope):
            return await self.app(scope, receive, send)
        await refuse(send, ApiError(401, "Missing or wrong API key (send it as 'Authorization: Bearer <key>').",
                                    code="invalid_api_key"))

"""The API key middleware (server/auth.py), as an ASGI app on its own and behind the guard."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chatgui.server.auth import BearerAuth
from chatgui.server.guard import AccessGuard

KEY = "s3cret-key"


def api(calls: list) -> Starlette:
    def answer(request):
        calls.append(request.url.path)
        return JSONResponse({"ok": True})
    return Starlette(routes=[Route("/v1/models", answer), Route("/v1/chat/completions", answer, methods=["POST"]),
                             Route("/health", answer)])


def test_without_a_key_configured_everything_passes():
    calls = []
    client = TestClient(BearerAuth(api(calls), None))
    assert client.get("/v1/models").status_code == 200 and calls == ["/v1/models"]


def test_the_key_is_checked_before_any_route_runs():
    calls = []
    client = TestClient(BearerAuth(api(calls), KEY))
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        r = client.get("/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", headers
    r = client.post("/v1/chat/completions", json={"messages": []})
    assert r.status_code == 401
    assert client.get("/v1/no-such-route").status_code == 401    # the routes are not told to strangers
    assert calls == []
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/health").status_code == 200              # the probe needs no key
    assert calls == ["/v1/models", "/health"]


def test_behind_the_guard_an_allowed_page_gets_cors_on_its_401_and_its_preflight_answered():
    origin = "http://app.example"
    guarded = AccessGuard(BearerAuth(api([]), KEY), allow_origins=[origin], credential_headers=BearerAuth.HEADERS)
    client = TestClient(guarded, base_url="http://127.0.0.1")
    pre = client.options("/v1/models", headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204                                # preflights carry no credentials
    allowed = pre.headers["access-control-allow-headers"].split(", ")
    assert "Authorization" in allowed and set(allowed) == {*BearerAuth.HEADERS, "Content-Type"}   # the key's headers
    r = client.get("/v1/models", headers={"Origin": origin})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == origin
    other = client.get("/v1/models", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {KEY}"})
    assert other.status_code == 403                              # the guard still comes first

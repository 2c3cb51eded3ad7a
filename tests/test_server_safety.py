"""The server against web pages and bad clients, spoken to with raw HTTP over sockets: foreign
Host (DNS rebinding), foreign Origin, text/plain bodies, CORS preflight, clients that never
finish sending, too many connections, clients that leave a non-streaming request."""
from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from slow_model import SlowModel, wait_until

from chatgui.server import start_server
from chatgui.server.guard import AccessGuard, host_name

BODY = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()


def raw(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send one HTTP/1.1 request exactly as written; (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def post_head(host: str, content_type: str | None = "application/json", origin: str | None = None,
              path: str = "/v1/chat/completions", length: int = len(BODY)) -> str:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {length}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if origin:
        lines.append(f"Origin: {origin}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def handle():
    with start_server(SlowModel(tokens=2, delay=0), allow_hosts=["llm.lan"],
                      allow_origins=["http://localhost:3000"]) as h:
        yield h


def test_the_attack_of_the_issue_is_refused(handle):
    # A page on attacker.example, its name rebound to 127.0.0.1, posting text/plain (no preflight).
    status, headers, body = raw(handle.port, post_head("attacker.example", "text/plain", "http://attacker.example"),
                                BODY)
    assert status == 421 and json.loads(body)["error"]["code"] == "host_not_allowed"
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "[::1]:{port}",
                                  "llm.lan:{port}"])
def test_loopback_names_and_allowed_hosts_are_served(handle, host):
    status, _, body = raw(handle.port, post_head(host.format(port=handle.port)), BODY)
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "xx"


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "192.168.1.7", "127.0.0.1.nip.io",
                                  "llm.lan.attacker.example"])
def test_foreign_hosts_are_421(handle, host):
    status, _, _ = raw(handle.port, post_head(host.format(port=handle.port)), BODY)
    assert status == 421
    status, _, _ = raw(handle.port, f"GET /v1/models HTTP/1.1\nHost: {host.format(port=handle.port)}\n"
                                    "Connection: close\n")
    assert status == 421


def test_a_foreign_origin_is_403_without_cors_headers(handle):
    status, headers, body = raw(handle.port, post_head("127.0.0.1", origin="http://attacker.example"), BODY)
    assert status == 403 and json.loads(body)["error"]["code"] == "origin_not_allowed"
    assert not any(k.startswith("access-control-") for k in headers)
    status, headers, _ = raw(handle.port, "OPTIONS /v1/chat/completions HTTP/1.1\nHost: 127.0.0.1\n"
                                          "Origin: http://attacker.example\nAccess-Control-Request-Method: POST\n"
                                          "Connection: close\n")
    assert status == 403 and not any(k.startswith("access-control-") for k in headers)


def test_an_allowed_origin_gets_cors_headers_and_its_preflight_answered(handle):
    origin = "http://localhost:3000"
    status, headers, _ = raw(handle.port, "OPTIONS /v1/chat/completions HTTP/1.1\nHost: 127.0.0.1\n"
                                          f"Origin: {origin}\nAccess-Control-Request-Method: POST\n"
                                          "Access-Control-Request-Headers: content-type, authorization\n"
                                          "Connection: close\n")
    assert status == 204 and headers["access-control-allow-origin"] == origin
    assert "POST" in headers["access-control-allow-methods"]
    assert {"authorization", "content-type"} <= {h.strip().lower() for h in
                                                 headers["access-control-allow-headers"].split(",")}
    status, headers, _ = raw(handle.port, post_head("127.0.0.1", origin=origin), BODY)
    assert status == 200 and headers["access-control-allow-origin"] == origin and headers["vary"] == "Origin"


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_post_that_is_not_declared_json_is_415(handle, content_type):
    status, _, body = raw(handle.port, post_head("127.0.0.1", content_type), BODY)
    assert status == 415 and json.loads(body)["error"]["code"] == "unsupported_media_type"


def test_json_with_a_charset_is_fine(handle):
    assert raw(handle.port, post_head("127.0.0.1", "Application/JSON; charset=utf-8"), BODY)[0] == 200


def test_the_bound_address_is_an_allowed_host():
    guard = AccessGuard(None, bound_host="192.168.1.5")
    assert guard.host_allowed("192.168.1.5:8000") and not guard.host_allowed("192.168.1.6:8000")
    assert AccessGuard(None, bound_host="0.0.0.0").host_allowed("localhost")
    assert not AccessGuard(None, bound_host="0.0.0.0").host_allowed("0.0.0.0")
    assert AccessGuard(None, allow_hosts=["*"]).host_allowed("anything.example")
    assert AccessGuard(None, allow_hosts=["fe80::1"]).host_allowed("[fe80::1]:80")
    assert host_name("[::1]:8000") == "::1" and host_name("Example.COM") == "example.com"


# -- clients that misbehave ------------------------------------------------------------------
def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes sock (recv gives b"" or a reset) within the time."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
                                  post_head("127.0.0.1").replace("\n", "\r\n").encode() + b"\r\n" + BODY[:5]])
def test_a_client_that_never_finishes_its_request_is_cut_off(sent):
    with start_server(SlowModel(tokens=1), read_timeout=0.5) as h:
        with socket.create_connection(("127.0.0.1", h.port)) as s:
            s.sendall(sent)
            t = time.monotonic()
            assert closed_within(s, 5)
            assert 0.3 < time.monotonic() - t < 3
        assert httpx.post(h.url + "/chat/completions", content=BODY,
                          headers={"Content-Type": "application/json"}).status_code == 200


def test_a_reply_may_take_longer_than_the_read_timeout_and_keep_alive_goes_on():
    model = SlowModel(tokens=40, delay=0.025)         # ~1 s to answer
    with start_server(model, read_timeout=0.3) as h, httpx.Client(timeout=10) as client:
        for _ in range(2):     # the second request reuses the kept-alive connection
            r = client.post(h.url + "/chat/completions", content=BODY, headers={"Content-Type": "application/json"})
            assert r.json()["choices"][0]["message"]["content"] == "x" * 40


def served(h) -> bool:
    try:
        return httpx.post(h.url + "/chat/completions", content=BODY, headers={"Content-Type": "application/json"},
                          timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_connections_that_send_no_request_do_not_lock_out_new_clients(sent):
    # Before: 64 (here 4) connections that sent nothing or half a header held every place for the
    # whole read timeout, and each new client was closed at once.
    with start_server(SlowModel(tokens=1), max_connections=4, read_timeout=30) as h:
        held = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(4)]
        try:
            for s in held:
                s.sendall(sent)
            time.sleep(0.2)
            t = time.monotonic()
            assert served(h) and served(h), "a new client was shut out"
            assert time.monotonic() - t < 3
            assert sum(closed_within(s, 0.5) for s in held) >= 1      # the oldest waiting ones made room
        finally:
            for s in held:
                s.close()


def test_connections_with_requests_in_progress_are_kept_and_more_are_refused():
    model = SlowModel(tokens=1, delay=0)
    model.release.clear()            # every reply waits until released
    with start_server(model, max_connections=4, read_timeout=30, max_waiting=8) as h:
        busy = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(4)]
        try:
            for s in busy:
                s.sendall(post_head("127.0.0.1").replace("\n", "\r\n").encode() + b"\r\n" + BODY)
            wait_until(lambda: len(model.started) >= 1 and h.waiting >= 3)
            extra = socket.create_connection(("127.0.0.1", h.port))
            assert closed_within(extra, 3), "a fifth connection was let in with four requests in progress"
            extra.close()
            assert not any(closed_within(s, 0.05) for s in busy), "a client whose request was in was cut off"
            model.release.set()
            for s in busy:
                s.settimeout(10)
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
        finally:
            model.release.set()
            for s in busy:
                s.close()
        wait_until(lambda: served(h))


def test_a_non_streaming_client_that_leaves_cancels_its_generation_at_once():
    # Tokens keep coming (every 10 ms), so the old "no token for 0.25 s" check never fired.
    model = SlowModel(tokens=100_000, delay=0.01)
    with start_server(model) as h:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(h.url + "/chat/completions", content=BODY, headers={"Content-Type": "application/json"},
                       timeout=0.5)
        t = time.monotonic()
        assert model.cancelled.wait(5), "the generation went on after its client left"
        assert time.monotonic() - t < 2.0      # before: never, while tokens kept coming
        wait_until(lambda: not h.busy)


def test_the_command_line_passes_the_openings_on():
    from chatgui.server.cli import parse_args

    args = parse_args(["--allow-host", "llm.lan", "--allow-host", "10.0.0.2", "--allow-origin", "http://a.test",
                       "--read-timeout", "3", "--max-connections", "10"])
    assert args.allow_host == ["llm.lan", "10.0.0.2"] and args.allow_origin == ["http://a.test"]
    assert args.read_timeout == 3 and args.max_connections == 10
    defaults = parse_args([])
    assert defaults.allow_host == [] and defaults.allow_origin == []

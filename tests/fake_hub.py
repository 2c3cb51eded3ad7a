"""A fake Hugging Face hub on 127.0.0.1 for download tests (never the real one: CI is offline).

It answers the three requests chatgui makes, as the hub does:
  GET  /api/models/{repo}/revision/{revision} -> {"id": repo, "sha": commit, ...}
  POST /api/models/{repo}/paths-info/{commit} (form paths=...) -> [{"path", "type", "oid", "size",
       "lfs": {"oid": sha256, "size", "pointerSize"}}] for the files it holds
  GET  /{repo}/resolve/{commit}/{path} -> 302 to the file's bytes (a FileServer, which honours Range)
The sha256 it reports can be set apart from the bytes it serves (a hub whose file changed, or a lie).
"""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from model_server import FileServer


class FakeHub:
    def __init__(self, repo: str, path: str, data: bytes, revision: str = "main", reported_sha256: str | None = None):
        self.repo, self.path, self.revision = repo, path, revision
        self.commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
        self.files = FileServer(data)
        self.reported_sha256 = reported_sha256 or hashlib.sha256(data).hexdigest()
        self.size = len(data)
        self.requests: list[tuple[str, str]] = []      # (method, path)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if self.path != f"/api/models/{outer.repo}/paths-info/{outer.commit}":
                    return self._answer(404, b'{"error": "Repository not found"}')
                wanted = form.get("paths", [])
                entries = [{"type": "file", "path": outer.path, "size": outer.size, "oid": "0" * 40,
                            "lfs": {"oid": outer.reported_sha256, "size": outer.size, "pointerSize": 135}}
                           ] if outer.path in wanted else []
                self._answer(200, json.dumps(entries).encode())

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                if self.path == f"/api/models/{outer.repo}/revision/{outer.revision}":
                    return self._answer(200, json.dumps({"id": outer.repo, "sha": outer.commit}).encode())
                if self.path != f"/{outer.repo}/resolve/{outer.commit}/{urllib.parse.quote(outer.path)}":
                    return self._answer(404, b"Entry not found")
                self.send_response(302)
                self.send_header("Location", outer.files.url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.files.close()

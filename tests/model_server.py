"""A loopback HTTP server for download tests: serves one file, honours Range (and If-Range),
can drop the connection once midway through a response, and can serve slowly. For the lies of
issue 29 it can also: stop every response after some bytes (a clean close), answer a Range with
another range, ignore If-Range, send no validator at all, swap the file for another version
between requests, and trickle its headers a byte at a time."""
from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self, data: bytes, drop_once_at: int | None = None, delay_per_block: float = 0.0,
                 block: int = 4096, etag: str | None = '"v1"', *, last_modified: str | None = None,
                 drop_each_after: int | None = None, shift_range_once: int = 0, honour_if_range: bool = True,
                 trickle_headers: float = 0.0):
        self.data, self.drop_once_at, self.delay, self.block, self.etag = data, drop_once_at, delay_per_block, block, etag
        self.last_modified = last_modified
        self.drop_each_after = drop_each_after      # every response stops after this many bytes
        self.shift_range_once = shift_range_once    # the first Range request gets bytes this much later
        self.honour_if_range = honour_if_range
        self.trickle_headers = trickle_headers      # seconds between header bytes (bounded: ~10 s in all)
        self.after_first_response = None           # called once the first response has ended
        self.requests: list[dict] = []        # {"range": header or None, "if_range": ..., "sent": bytes sent}
        self.lock = threading.Lock()
        self.closed = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/files/tiny.gguf"

    def bytes_sent(self) -> int:
        return sum(r["sent"] for r in self.requests)

    def replace(self, data: bytes, etag: str | None = None, last_modified: str | None = None) -> None:
        """A new version of the file is published under the same URL."""
        with self.lock:
            self.data, self.etag, self.last_modified = data, etag, last_modified

    def _validator_matches(self, if_range: str | None) -> bool:
        return (if_range is None or not self.honour_if_range
                or if_range in (self.etag, self.last_modified) and if_range is not None)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        record = {"range": h.headers.get("Range"), "if_range": h.headers.get("If-Range"), "sent": 0}
        with self.lock:
            self.requests.append(record)
            data, etag, modified = self.data, self.etag, self.last_modified
        if self.trickle_headers:
            self._trickle(h)
            return
        start = 0
        m = re.match(r"bytes=(\d+)-$", record["range"] or "")
        if m and self._validator_matches(record["if_range"]):
            start = int(m.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            with self.lock:
                start, self.shift_range_once = start + self.shift_range_once, 0
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(data) - start))
        if etag:
            h.send_header("ETag", etag)
        if modified:
            h.send_header("Last-Modified", modified)
        h.end_headers()
        pos = start
        try:
            while pos < len(data):
                with self.lock:
                    drop = self.drop_once_at is not None and pos >= self.drop_once_at
                    if drop:
                        self.drop_once_at = None
                if drop or self.drop_each_after is not None and pos - start >= self.drop_each_after:
                    h.close_connection = True
                    return                     # the client sees fewer bytes than Content-Length
                chunk = data[pos:pos + self.block]
                h.wfile.write(chunk)
                pos += len(chunk)
                record["sent"] += len(chunk)
                if self.delay:
                    time.sleep(self.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            hook, self.after_first_response = self.after_first_response, None
            if hook:
                hook()

    def _trickle(self, h: BaseHTTPRequestHandler) -> None:
        """A status line, then header bytes one at a time, for at most ~10 s (never ends them)."""
        h.close_connection = True
        try:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            h.wfile.flush()
            for _ in range(int(10 / self.trickle_headers)):
                if self.closed.wait(self.trickle_headers):
                    return
                h.wfile.write(b"a")
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def close(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()

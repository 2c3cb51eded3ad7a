"""A loopback HTTP server for download tests: serves one file, honours Range (and If-Range),
can drop the connection once midway through a response, and can serve slowly."""
from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self, data: bytes, drop_once_at: int | None = None, delay_per_block: float = 0.0,
                 block: int = 4096, etag: str = '"v1"'):
        self.data, self.drop_once_at, self.delay, self.block, self.etag = data, drop_once_at, delay_per_block, block, etag
        self.requests: list[dict] = []        # {"range": header or None, "sent": bytes sent}
        self.lock = threading.Lock()
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

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        record = {"range": h.headers.get("Range"), "sent": 0}
        with self.lock:
            self.requests.append(record)
        start = 0
        m = re.match(r"bytes=(\d+)-$", record["range"] or "")
        if_range = h.headers.get("If-Range")
        if m and (if_range is None or if_range == self.etag):
            start = int(m.group(1))
            if start >= len(self.data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(self.data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(self.data) - start))
        h.send_header("ETag", self.etag)
        h.end_headers()
        pos = start
        try:
            while pos < len(self.data):
                with self.lock:
                    drop = self.drop_once_at is not None and pos >= self.drop_once_at
                    if drop:
                        self.drop_once_at = None
                if drop:
                    h.close_connection = True
                    return                     # the client sees fewer bytes than Content-Length
                chunk = self.data[pos:pos + self.block]
                h.wfile.write(chunk)
                pos += len(chunk)
                record["sent"] += len(chunk)
                if self.delay:
                    time.sleep(self.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A model's bytes over plain HTTP(S), resumable, trusting no range the server was not asked for.

Resuming appends the server's bytes to the partial file, so each answer is checked first:
- a 206 must be the range asked for (its Content-Range), of the same file: If-Range sends the
  validator the download began with (a strong ETag, else Last-Modified), and a 206 naming
  another validator is a new version that no If-Range stopped;
- with no validator the request starts OVERLAP bytes early and those must equal what is here;
- whatever does not fit starts the download over (at most MAX_RESTARTS times), never a splice.
Pause and cancel act within ~0.1 s even while a server trickles its headers: a watcher thread
shuts the socket down under the blocked read. A clean close after new bytes is resumed at once;
only attempts that brought nothing count towards giving up.
"""
from __future__ import annotations

import http.client
import re
import socket
import threading
import time
import urllib.error
import urllib.request

from .errors import HashMismatchError, ModelFetchError, SourceUnreachable
from .transfer import Control, PartialDownload

USER_AGENT = "chatgui-model-download"
URL_RETRIES = 5           # attempts in a row that bring no new bytes before giving up
MAX_RESTARTS = 2          # answers that do not continue what is here, each starting over
OVERLAP = 64 * 1024       # bytes asked for again, without a validator, to see it is the same file
HEADER_TIMEOUT = 60.0     # seconds for a server's status line and headers, however they trickle
READ_TIMEOUT = 30.0       # seconds without a byte


class _Watch:
    """Shuts down the socket of the request in progress when the download is paused or
    cancelled, or when its headers take longer than HEADER_TIMEOUT: the blocked read in the
    download's thread then returns at once."""

    def __init__(self, control: Control):
        self.control = control
        self.sock: socket.socket | None = None
        self.header_deadline: float | None = None
        self.timed_out = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="download-watch", daemon=True)

    def __enter__(self) -> "_Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()            # at most one wait (0.1 s)

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self.sock = sock
        if self.control.stopped:
            self._cut()

    def _run(self) -> None:
        while not self._done.is_set():
            if self.control.wait(0.1) and not self._done.is_set():
                self._cut()
                return
            deadline = self.header_deadline
            if deadline is not None and time.monotonic() > deadline:
                self.timed_out = True
                self._cut()

    def _cut(self) -> None:
        with self._lock:
            sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass            # already closed


def _opener(watch: _Watch) -> urllib.request.OpenerDirector:
    """urllib (redirects, proxies) with connections that hand their socket to watch."""
    class Http(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            watch.attach(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            watch.attach(self.sock)

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Http, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(Https, req, context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(HttpHandler, HttpsHandler)


def _validator(headers) -> dict:
    """What identifies this version of the file: a strong ETag, else Last-Modified (If-Range
    may carry either; a weak ETag it may not)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return {"etag": etag}
    modified = headers.get("Last-Modified")
    return {"last_modified": modified} if modified else {}


def _range_of(resp) -> tuple[int, int | None] | None:
    """(first byte, total or None) of a 206's Content-Range, None if it has none."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", resp.headers.get("Content-Range", ""))
    if not m:
        return None
    return int(m.group(1)), None if m.group(2) == "*" else int(m.group(2))


def _total_from(resp, start: int) -> int | None:
    r = _range_of(resp) if resp.status == 206 else None
    if r and r[1] is not None:
        return r[1]
    length = resp.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _does_not_continue(resp, start: int, state: dict) -> str | None:
    """Why a 206 answer cannot be appended at `start`, or None if it can."""
    if not start:
        return "it sent part of the file when the whole was asked for"
    r = _range_of(resp)
    if r is None:
        return "it sent part of the file without saying which"
    if r[0] != start:
        return f"asked for bytes from {start:,}, it sent bytes from {r[0]:,}"
    now = _validator(resp.headers)
    if state.get("etag") and now.get("etag") != state["etag"]:
        return f"the file changed on the server (ETag {state['etag']} -> {now.get('etag', 'none')})"
    if state.get("last_modified") and resp.headers.get("Last-Modified") != state["last_modified"]:
        return (f"the file changed on the server (Last-Modified {state['last_modified']} -> "
                f"{resp.headers.get('Last-Modified', 'none')})")
    return None


def _same_bytes(resp, partial: PartialDownload, have: int, overlap: int) -> bool:
    """Whether the first `overlap` bytes of resp equal the last `overlap` bytes here; OSError
    if the connection ended before they all came (that says nothing about the file)."""
    got = resp.read(overlap)
    if len(got) < overlap:
        raise ConnectionError(f"the connection closed after {len(got):,} of {overlap:,} bytes")
    with open(partial.part, "rb") as f:
        f.seek(have - overlap)
        return got == f.read(overlap)


def fetch_url(url: str, partial: PartialDownload, total: int | None, report, control: Control, append) -> None:
    """Download url into partial, resuming what is there. append(partial, resp, control, needed,
    on_bytes) copies a response's body to the partial file (sources._append)."""
    with _Watch(control) as watch:
        _fetch(url, partial, total, report, control, append, watch, _opener(watch))


def _fetch(url, partial, total, report, control, append, watch, opener) -> None:
    state = partial.state()
    if state.get("source") != url or not partial.part.exists():
        state = {"source": url}
        partial.start_over(state)
    failures = restarts = 0
    got_any = False

    def start_over(why: str) -> dict:
        nonlocal restarts
        restarts += 1
        if restarts > MAX_RESTARTS:
            partial.discard()
            raise HashMismatchError(f"{url} does not send the parts of the file asked for ({why}); what was "
                                    "downloaded was deleted")
        fresh = {"source": url}
        partial.start_over(fresh)
        return fresh

    while True:
        control.check()
        have = partial.size()
        if total is not None and have > total:
            state = start_over(f"{have:,} bytes here, the file has {total:,}")
            have = 0
        valid = {k: state[k] for k in ("etag", "last_modified") if state.get(k)}
        if not valid and 0 < have <= OVERLAP:     # too little to check against: fetch it again
            state = {"source": url}
            partial.start_over(state)
            have = 0
        overlap = 0 if valid or not have else OVERLAP
        start = have - overlap
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if start:
            req.add_header("Range", f"bytes={start}-")
            if valid:
                req.add_header("If-Range", valid.get("etag") or valid["last_modified"])
        watch.timed_out, watch.header_deadline = False, time.monotonic() + HEADER_TIMEOUT
        try:
            resp = opener.open(req, timeout=READ_TIMEOUT)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and total is not None and have == total:
                return                 # everything is already here
            raise SourceUnreachable(f"{url} answered HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            control.check()            # a pause or cancel cut the connection
            if watch.timed_out:
                raise SourceUnreachable(f"{url} did not send its headers within {HEADER_TIMEOUT:.0f} s") from e
            failures += 1
            if failures >= URL_RETRIES or have == 0 and failures >= 2:
                raise _gave_up(url, f"could not reach {url}: {getattr(e, 'reason', e)}", got_any) from e
            control.wait(min(0.2 * failures, 2))
            continue
        finally:
            watch.header_deadline = None
        with resp:
            if start and resp.status == 200:        # no Range support, or If-Range saw a new version
                state = {"source": url}
                partial.start_over(state)
                have = start = overlap = 0
            elif resp.status == 206:
                why = _does_not_continue(resp, start, state)
                if why is None and overlap:
                    try:
                        same = _same_bytes(resp, partial, have, overlap)
                    except (OSError, http.client.HTTPException) as e:
                        control.check()
                        failures += 1
                        if failures >= URL_RETRIES:
                            raise _gave_up(url, f"the connection to {url} keeps dropping: {e}", got_any) from e
                        continue
                    why = None if same else "the file changed on the server (the bytes before the resume differ)"
                if why:
                    state = start_over(why)
                    continue
            elif resp.status != 200:
                raise SourceUnreachable(f"{url} answered HTTP {resp.status} {resp.reason}")
            server_total = _total_from(resp, start)
            if total is not None and server_total is not None and server_total != total:
                raise SourceUnreachable(f"{url} serves {server_total:,} bytes, the catalog expects {total:,}")
            total = total if total is not None else server_total
            if have == 0:               # this answer starts the file: what identifies its version
                state = {"source": url, **_validator(resp.headers)}
                partial.save_state(state)
            report(have, total)
            try:
                append(partial, resp, control, (total - have) if total else None, lambda n: report(have + n, total))
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, ModelFetchError):
                    raise
        control.check()                 # a pause or cancel may have ended the body early
        if total is None:
            return                      # no length was given: the server's close ends the file
        if total is not None and partial.size() >= total:
            return
        if partial.size() > have:       # it sent something: resume at once, from there
            got_any, failures = True, 0
            continue
        failures += 1
        if failures >= URL_RETRIES:
            raise _gave_up(url, f"{url} stopped sending at {partial.size():,} of "
                                f"{f'{total:,}' if total else 'an unknown number of'} bytes", got_any)


def _gave_up(url: str, why: str, got_any: bool) -> ModelFetchError:
    """After bytes arrived the server is reachable: say the download was interrupted (its bytes
    are kept, it resumes) rather than let it count as a source that cannot be reached."""
    if got_any:
        return ModelFetchError(f"The download from {url} was interrupted ({why}). What arrived is kept: "
                               "resume the download to go on from there.")
    return SourceUnreachable(why)

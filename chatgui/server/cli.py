"""`chatgui-serve` / `python -m chatgui.server`: our engine behind an OpenAI-compatible API.

Prints the base URL (".../v1") alone on stdout once the port listens; everything else goes to
stderr. `main(argv)` is also what a `chatgui serve` subcommand should call.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from chatgui.common.malloc import share_malloc_arenas

from .connections import DEFAULT_MAX_CONNECTIONS, DEFAULT_READ_TIMEOUT
from chatgui.common.io import is_loopback_host

from .runner import DEFAULT_HOST, DEFAULT_MAX_WAITING, DEFAULT_PORT, start_server


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="chatgui-serve", description="Serve a local model with the OpenAI chat API.")
    ap.add_argument("--model", metavar="PATH", help="GGUF model file (default: the default model, fetched if missing)")
    ap.add_argument("--host", default=DEFAULT_HOST,
                    help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    ap.add_argument("--context-length", type=int, default=None,
                    help="context length in tokens (default: 4096 or the model's, if smaller)")
    ap.add_argument("--model-name", default=None, help="the model id clients use (default: the file name)")
    ap.add_argument("--api-key", default=os.environ.get("CHATGUI_API_KEY"),
                    help="require this key from clients (default: $CHATGUI_API_KEY, which other users cannot "
                         "see in the process list; unset: no key needed)")
    ap.add_argument("--max-waiting", type=int, default=DEFAULT_MAX_WAITING,
                    help=f"requests that may wait while one is answered; more get 503 (default {DEFAULT_MAX_WAITING})")
    ap.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="also answer requests sent to this host name (by default only loopback names and the "
                         "listening address; '*': any). Repeatable")
    ap.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                    help="let web pages from this origin (e.g. http://localhost:3000; '*': any) use the API; "
                         "by default browsers are refused. Repeatable")
    ap.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT, metavar="SECONDS",
                    help=f"close a connection whose request is not fully sent within this time "
                         f"(default {DEFAULT_READ_TIMEOUT:g})")
    ap.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                    help=f"open connections at most; when full, the one waiting longest for its request is "
                         f"closed to let a new one in (default {DEFAULT_MAX_CONNECTIONS})")
    ap.add_argument("--quiet", action="store_true", help="do not log each request")
    return ap.parse_args(argv)


def _say(text: str) -> None:
    print(f"chatgui-serve: {text}", file=sys.stderr, flush=True)


def load(args):
    """The model, or None after saying why not."""
    from chatgui.engine import ModelLoadError, load_model
    from chatgui.models.default_model import ModelFetchError, default_model_path
    from chatgui.models.naming import display_name

    path = args.model
    try:
        if not path:
            _say("looking for the default model (fetching it if it is not here yet)")
            path = default_model_path(fetch=True)
        model = load_model(path, device=args.device, context_length=args.context_length)
        model.name = display_name(path)
        return model
    except (ModelFetchError, ModelLoadError) as e:
        _say(str(e))
        return None


def main(argv=None) -> int:
    share_malloc_arenas()        # before any thread starts
    args = parse_args(argv)
    if not is_loopback_host(args.host) and not args.api_key:
        _say(f"warning: listening on {args.host} without --api-key: anyone who can reach this machine can use it")
    if args.host in ("0.0.0.0", "::", "") and not args.allow_host:
        _say("note: requests must still be addressed to localhost; let other machines use the name or address "
             "they reach this one by with --allow-host NAME")
    model = load(args)
    if model is None:
        return 2
    try:
        handle = start_server(model, args.host, args.port, model_name=args.model_name, api_key=args.api_key,
                              max_waiting=args.max_waiting, access_log=not args.quiet, own_logging=True,
                              allow_hosts=args.allow_host, allow_origins=args.allow_origin,
                              read_timeout=args.read_timeout, max_connections=args.max_connections)
    except OSError as e:
        _say(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
        return 2
    print(handle.url, flush=True)
    _say(f"serving {handle.model_name!r} ({model.device}) at {handle.url} - Ctrl+C to stop")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        # wait() with a timeout so that Ctrl+C is delivered, and so a dead server ends the process.
        while not stop.wait(0.5) and handle.is_alive():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping")
        handle.stop()
    return 0

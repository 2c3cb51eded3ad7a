"""chatgui's own engine as an OpenAI-compatible HTTP server (Starlette + uvicorn). No Qt.

    from chatgui.server import start_server
    handle = start_server(model, host="127.0.0.1", port=0)   # returns once listening
    print(handle.url)                                          # http://127.0.0.1:PORT/v1
    handle.stop()

Endpoints: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions and /v1/completions
(streaming or not; logprobs, n up to 8 decoded as one batch, response_format JSON / JSON Schema),
GET /health. One generation at a time; up to `max_waiting` more wait, then 503. Safe by default
against web pages (guard.py) and slow clients (connections.py).
Command line: `chatgui-serve` / `python -m chatgui.server` (cli.main(argv)).
"""
from .runner import BackgroundServer, ServerHandle, start_server

__all__ = ["start_server", "ServerHandle", "BackgroundServer"]

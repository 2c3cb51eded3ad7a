"""Errors of the remote backend: one class per thing the user can do something about.

Every message is a sentence for the user. None of them ever holds the API key: messages are
built here from the status code and the server's own message, with the key scrubbed out.
"""
from __future__ import annotations

import json

from chatgui.common.errors import PromptTooLongError, WordedError

MAX_SERVER_MESSAGE = 300    # characters of the server's own explanation quoted to the user


class RemoteError(WordedError):
    """Base class. `status` is the HTTP status (None when no response came); `partial_text` is
    whatever reply text had arrived before the failure (also kept on the generation)."""

    def __init__(self, message: str, status: int | None = None, server_message: str = ""):
        super().__init__(message)
        self.status = status
        self.server_message = server_message
        self.partial_text = ""


class RemoteConnectionError(RemoteError):
    """The server could not be reached, or dropped the connection."""


class RemoteTimeoutError(RemoteError):
    """The server stayed silent longer than the timeout."""


class RemoteAuthError(RemoteError):
    """401 / 403: a missing or refused API key."""


class RemoteNotFoundError(RemoteError):
    """404: no such model, or the base URL is not an OpenAI-compatible API."""


class RemoteRateLimitError(RemoteError):
    """429: too many requests, or the account's quota is spent."""


class RemoteRequestError(RemoteError):
    """Another 4xx: the server refused the request as given."""


class RemotePromptTooLongError(RemoteRequestError, PromptTooLongError):
    """The server said the chat does not fit its context (so callers that handle the engine's
    PromptTooLongError handle this too)."""


class RemoteServerError(RemoteError):
    """5xx, or an error the server reported in the middle of a stream."""


class RemoteProtocolError(RemoteError):
    """The server answered with something that is not the OpenAI protocol (malformed stream)."""


def scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text


def server_message_of(body: bytes, secret: str | None = None) -> str:
    """The human part of an error body, in any of the shapes servers use, shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or err.get("msg") or ""
        if not err:
            err = data.get("detail") or data.get("message") or ""
        text = err if isinstance(err, str) else json.dumps(err)
    elif text.lstrip().startswith("<"):
        text = ""     # an HTML error page says nothing useful in a dialog
    text = " ".join(scrub(text, secret).split())
    return text[:MAX_SERVER_MESSAGE] + ("…" if len(text) > MAX_SERVER_MESSAGE else "")


def _mentions_context(message: str, code: str) -> bool:
    m = message.lower()
    return code == "context_length_exceeded" or "context length" in m or "context window" in m


def error_for_status(status: int, body: bytes, *, api_key: str | None, url: str,
                     retry_after: str | None = None) -> RemoteError:
    said = server_message_of(body, api_key)
    try:
        code = str((json.loads(body).get("error") or {}).get("code") or "")
    except (ValueError, AttributeError, TypeError):
        code = ""
    detail = f": {said}" if said else "."
    if status == 401:
        if api_key:
            return RemoteAuthError("The server refused the API key (401). Check the key in the settings.", status, said)
        return RemoteAuthError("The server requires an API key (401). Enter one in the settings.", status, said)
    if status == 403:
        return RemoteAuthError(f"The server refused access (403){detail}", status, said)
    if status == 404:
        return RemoteNotFoundError(f"The server has no such model or endpoint (404){detail} "
                                   f"Check the base URL ({url}) and the model name.", status, said)
    if status == 429:
        wait = f" The server asks to wait {retry_after} s." if retry_after else ""
        return RemoteRateLimitError(f"The server is rate-limiting requests (429){detail}{wait}", status, said)
    if status in (408, 504):
        return RemoteTimeoutError(f"The server timed out ({status}){detail}", status, said)
    if 400 <= status < 500:
        cls = RemotePromptTooLongError if _mentions_context(said, code) else RemoteRequestError
        return cls(f"The server rejected the request ({status}){detail}", status, said)
    if status == 503:
        return RemoteServerError(f"The server is busy or unavailable (503){detail}", status, said)
    return RemoteServerError(f"The server failed ({status}){detail}", status, said)

"""Keeping API keys out of chat files.

Chats (and anything exported or written beside them: replay records, message meta) must never
hold an API key. The key belongs in the OS keyring when the optional `keyring` package is
installed and works, else in the app settings (settings.json in the config folder, never
beside chats). Write only `public_backend_settings(...)` of a backend dict next to a chat.
"""
from __future__ import annotations

from chatgui.common.io import url_without_credentials

KEYRING_SERVICE = "chatgui"
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "auth")


def is_secret_field(name: str) -> bool:
    n = str(name).lower()
    return any(w in n for w in _SECRET_WORDS)


def public_backend_settings(backend: dict) -> dict:
    """A copy of a backend-settings dict with every secret left out (fields named like a key,
    token, secret, password; user:password parts of URLs), safe to write beside chats."""
    out: dict = {}
    for k, v in (backend or {}).items():
        if is_secret_field(k):
            continue
        if isinstance(v, dict):
            v = public_backend_settings(v)
        elif isinstance(v, str) and "@" in v and "://" in v:
            v = url_without_credentials(v)
        out[k] = v
    return out


def _keyring():
    try:
        import keyring
        keyring.get_keyring()
        return keyring
    except Exception:   # noqa: BLE001 - not installed, or no usable backend on this desktop
        return None


def keyring_available() -> bool:
    return _keyring() is not None


def save_api_key(base_url: str, api_key: str) -> bool:
    """Store the key in the OS keyring under the server's URL. False when there is no keyring
    (then keep it in the app settings instead)."""
    kr = _keyring()
    if kr is None:
        return False
    try:
        kr.set_password(KEYRING_SERVICE, base_url, api_key)
        return True
    except Exception:   # noqa: BLE001 - a locked or refusing keyring
        return False


def load_api_key(base_url: str) -> str | None:
    kr = _keyring()
    if kr is None:
        return None
    try:
        return kr.get_password(KEYRING_SERVICE, base_url)
    except Exception:   # noqa: BLE001
        return None


def delete_api_key(base_url: str) -> None:
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(KEYRING_SERVICE, base_url)
        except Exception:   # noqa: BLE001 - nothing stored
            pass

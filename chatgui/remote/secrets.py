"""Keeping API keys out of chat files, and where they are kept instead.

Chats (and anything exported or written beside them: replay records, message meta) must never
hold an API key. Write only `public_backend_settings(...)` of a backend dict next to a chat.

Keys live in the OS keyring (`keyring`: Secret Service, macOS Keychain, Windows Credential
Manager), under the server's URL. Where there is no keyring service (a bare Linux session, a
container: keyring's fail or null backend) or it refuses (locked, declined), a key is kept in
memory for this session only and the caller says so: not in settings.json, a plain-text file
that backups and dotfile sync copy around, because a key can cost its owner money; a user who
wants it remembered can install a keyring service. A key an older version wrote into
settings.json is still used (and moved into the keyring when there is one).
"""
from __future__ import annotations

from typing import Any

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


def system_keyring() -> Any | None:
    """The OS keyring backend, or None where there is no keyring service (keyring's fail and
    null backends: they only refuse, or drop what they are given)."""
    try:
        import keyring
        from keyring.backends import fail, null
        backend = keyring.get_keyring()
    except Exception:   # noqa: BLE001 - a broken keyring configuration counts as none
        return None
    return None if isinstance(backend, (fail.Keyring, null.Keyring)) else backend


class ApiKeys:
    """API keys by server URL: in the OS keyring, else in memory until the app closes.

    keys = ApiKeys(system_keyring()); keys.save(url, key) -> True when the keyring holds it (False:
    this session only; `persistent` tells beforehand); keys.load(url) -> the key or ""."""

    def __init__(self, keyring_backend: Any | None):
        self._keyring = keyring_backend
        self._session: dict[str, str] = {}

    @property
    def persistent(self) -> bool:
        return self._keyring is not None

    def save(self, base_url: str, api_key: str) -> bool:
        """Remember the key ("" forgets it). False when it is kept for this session only."""
        if not api_key:
            self.delete(base_url)
            return True
        self._session[base_url] = api_key   # (also where the keyring refuses: the session still has it)
        if self._keyring is None:
            return False
        try:
            self._keyring.set_password(KEYRING_SERVICE, base_url, api_key)
            return True
        except Exception:   # noqa: BLE001 - a locked or refusing keyring
            return False

    def load(self, base_url: str) -> str:
        if base_url in self._session:
            return self._session[base_url]
        if self._keyring is None:
            return ""
        try:
            return self._keyring.get_password(KEYRING_SERVICE, base_url) or ""
        except Exception:   # noqa: BLE001 - a locked keyring: as if nothing were stored
            return ""

    def delete(self, base_url: str) -> None:
        self._session.pop(base_url, None)
        if self._keyring is not None:
            try:
                self._keyring.delete_password(KEYRING_SERVICE, base_url)
            except Exception:   # noqa: BLE001 - nothing stored
                pass

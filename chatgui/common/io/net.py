"""Network-address rules: which hosts are this computer, and URLs safe to show or save."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that reach only this computer: "localhost" and its
    subdomains (RFC 6761), 127.0.0.0/8, ::1 (brackets and case ignored)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_without_credentials(url: str) -> str:
    """The URL without its user:password@ part (for messages, logs and files beside chats)."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if ":" in host:              # an IPv6 address keeps its brackets
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

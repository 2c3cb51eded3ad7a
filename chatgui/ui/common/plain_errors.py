"""What the user reads when a model cannot be used, and the one name each model goes by.

The engine's messages are exact but technical ("not a GGUF file (starts with b'# Pi', ...)").
The window shows a plain sentence instead; the exact message stays in the notice's tooltip.
"""
from __future__ import annotations

import re
from pathlib import PurePath

from PySide6.QtCore import QT_TRANSLATE_NOOP

from chatgui.ui.common.i18n import translate

# (pattern in the engine's reason, plain sentence); the first match wins.
_PLAIN_LOAD_ERRORS = [
    (r"^not a GGUF file", QT_TRANSLATE_NOOP(
        "PlainErrors", "“{name}” is not a model file chatgui can use: it is not in the GGUF format. Choose a "
                       ".gguf file.")),
    (r"^file not found", QT_TRANSLATE_NOOP("PlainErrors", "The model file “{name}” was not found. It may have been "
                                                          "moved or deleted.")),
    (r"^the file is empty|^the file is truncated", QT_TRANSLATE_NOOP(
        "PlainErrors", "The model file “{name}” is incomplete (perhaps an unfinished download). Download it "
                       "again or choose another file.")),
    (r"^this is a folder", QT_TRANSLATE_NOOP("PlainErrors", "“{name}” is a folder. Choose a .gguf file.")),
    (r"^cannot read the file", QT_TRANSLATE_NOOP("PlainErrors", "The model file “{name}” cannot be read (check "
                                                                "that you may open it).")),
    (r"not enough memory|ran out of memory", QT_TRANSLATE_NOOP(
        "PlainErrors", "There is not enough memory to load “{name}”. Close other programs or choose a smaller "
                       "model.")),
]
_ENGINE_MESSAGE = re.compile(r"^Cannot load model (?P<path>.+?): (?P<reason>.*)$", re.S)


def plain_load_error(message: str) -> str:
    """A sentence for the user in place of the engine's load error (unknown ones are kept)."""
    match = _ENGINE_MESSAGE.match(message)
    if match is None:
        return message
    name = PurePath(match["path"]).name
    for pattern, sentence in _PLAIN_LOAD_ERRORS:
        if re.search(pattern, match["reason"]):
            return translate("PlainErrors", sentence).format(name=name)
    reason = match["reason"].rstrip()
    return translate("PlainErrors", "The model file “{name}” cannot be used: {reason}").format(
        name=name, reason=reason if reason.endswith((".", "!", "?")) else reason + ".")


# The download code's exact messages (chatgui.models.sources): a sentence for each kind of trouble.
_UNREACHABLE = re.compile(r"could not reach (?P<url>\S+?): ")
_HTTP_ERROR = re.compile(r"(?P<url>\S+) answered HTTP (?P<code>\d+)")
_DROPPING = re.compile(r"the connection to (?P<url>\S+?) keeps dropping")


def _hosts(pattern: re.Pattern, message: str) -> str:
    from urllib.parse import urlsplit
    hosts = []
    for match in pattern.finditer(message):
        host = urlsplit(match["url"]).hostname or match["url"]
        if host not in hosts:
            hosts.append(host)
    return ", ".join(hosts)


def plain_download_error(message: str) -> str:
    """A sentence for the user in place of a download's technical message ("[Errno -2] Name or
    service not known"); a message without known trouble in it is kept as it is."""
    hosts = _hosts(_UNREACHABLE, message)
    if hosts:
        return translate("PlainErrors", "Could not reach {host}: check the address or your connection.").format(
            host=hosts)
    match = _HTTP_ERROR.search(message)
    if match:
        host = _hosts(_HTTP_ERROR, message)
        if match["code"] in ("401", "403", "404", "410"):
            return translate("PlainErrors", "{host} has no file for this address that chatgui may download (error "
                                            "{code}): check the address.").format(host=host, code=match["code"])
        return translate("PlainErrors", "{host} could not send the file just now (error {code}): try again "
                                        "later.").format(host=host, code=match["code"])
    hosts = _hosts(_DROPPING, message)
    if hosts:
        return translate("PlainErrors", "The connection to {host} keeps dropping: try again later (the download "
                                        "goes on where it stopped).").format(host=hosts)
    return message

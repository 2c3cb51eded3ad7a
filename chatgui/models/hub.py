"""Files on the Hugging Face hub: where to download one, and its sha256 and size from the hub's metadata.

A catalog entry may name a file by repository, path and revision without pinning its sha256. The hub
stores model files with Git LFS (or Xet, which keeps the LFS pointer), and its paths-info endpoint
answers, per file, the LFS object's sha256 and size:
    POST {hub}/api/models/{repo}/paths-info/{revision}   form: paths=<file>
    -> [{"type": "file", "path": ..., "size": ..., "oid": <git blob id>,
         "lfs": {"oid": <sha256>, "size": ..., "pointerSize": ...}}]
That is what huggingface_hub's get_paths_info reads. The download (resolve URL) is then checked against
it: a different file is refused and deleted, as with a pinned sha256.
The hub's base URL comes from CHATGUI_HUB_URL when set (tests run a fake hub on 127.0.0.1; a mirror works too).
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from .catalog import Source
from .errors import ModelFetchError, SourceUnreachable

HUB_URL_ENV = "CHATGUI_HUB_URL"
DEFAULT_HUB_URL = "https://huggingface.co"
METADATA_TIMEOUT = 30.0
MAX_METADATA_BYTES = 1 << 20       # a paths-info answer for one file is a few hundred bytes
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class HubFile:
    sha256: str
    size: int


def hub_url() -> str:
    return (os.environ.get(HUB_URL_ENV) or DEFAULT_HUB_URL).rstrip("/")


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="/")


def resolve_url(source: Source, base: str | None = None) -> str:
    """Where the file's bytes are downloaded from (the hub redirects to its storage)."""
    return f"{base or hub_url()}/{_quote(source.repo)}/resolve/{urllib.parse.quote(source.revision, safe='')}/" \
           f"{_quote(source.path)}"


def file_metadata(source: Source, base: str | None = None) -> HubFile:
    """The file's sha256 and size as the hub records them. SourceUnreachable when the hub cannot
    be asked (offline, an HTTP error, no such file); ModelFetchError when its answer makes no sense."""
    url = (f"{base or hub_url()}/api/models/{_quote(source.repo)}/paths-info/"
           f"{urllib.parse.quote(source.revision, safe='')}")
    body = urllib.parse.urlencode({"paths": source.path}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "chatgui-model-download"})
    try:
        with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT) as answer:
            raw = answer.read(MAX_METADATA_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise SourceUnreachable(f"{source.label}: the hub answered {e.code} when asked for the file's "
                                "sha256") from None
    except (urllib.error.URLError, OSError) as e:
        raise SourceUnreachable(f"{source.label}: the hub could not be reached ({e})") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise ModelFetchError(f"{source.label}: the hub's file metadata is too large")
    return _parse(source, raw)


def _parse(source: Source, raw: bytes) -> HubFile:
    try:
        entries = json.loads(raw)
    except ValueError:
        raise ModelFetchError(f"{source.label}: the hub's file metadata is not JSON") from None
    if not isinstance(entries, list):
        raise ModelFetchError(f"{source.label}: the hub's file metadata is not a list of files")
    for item in entries:
        if isinstance(item, dict) and item.get("path") == source.path:
            lfs = item.get("lfs")
            if not isinstance(lfs, dict):
                raise ModelFetchError(f"{source.label}: the hub gives no LFS sha256 for this file")
            sha, size = str(lfs.get("oid", "")).lower(), lfs.get("size", item.get("size"))
            if not _SHA256.fullmatch(sha) or not isinstance(size, int) or size <= 0:
                raise ModelFetchError(f"{source.label}: the hub's sha256 or size for this file is not valid")
            return HubFile(sha, size)
    raise SourceUnreachable(f"{source.label}: the hub has no such file at this revision")

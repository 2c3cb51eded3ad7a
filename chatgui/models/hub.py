"""Files on the Hugging Face hub: where to download one, and its sha256 and size from the hub's metadata.

A catalog entry may name a file by repository, path and revision without pinning its sha256. The hub
stores model files with Git LFS (or Xet, which keeps the LFS pointer), and its paths-info endpoint
answers, per file, the LFS object's sha256 and size:
    POST {hub}/api/models/{repo}/paths-info/{revision}   form: paths=<file>
    -> [{"type": "file", "path": ..., "size": ..., "oid": <git blob id>,
         "lfs": {"oid": <sha256>, "size": ..., "pointerSize": ...}}]
That is what huggingface_hub's get_paths_info reads. A branch or tag is first turned into its commit
(GET {hub}/api/models/{repo}/revision/{revision} -> {"sha": <commit>, ...}, as model_info does), so that
the metadata and the bytes are of one version even when the branch moves meanwhile. The download
(resolve URL at that commit) is then checked against it: a different file is refused and deleted.
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


_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubFile:
    sha256: str
    size: int
    commit: str          # the revision it was read at, as a commit


def hub_url() -> str:
    return (os.environ.get(HUB_URL_ENV) or DEFAULT_HUB_URL).rstrip("/")


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="/")


def resolve_url(source: Source, base: str | None = None) -> str:
    """Where the file's bytes are downloaded from (the hub redirects to its storage)."""
    return f"{base or hub_url()}/{_quote(source.repo)}/resolve/{urllib.parse.quote(source.revision, safe='')}/" \
           f"{_quote(source.path)}"


def _ask(source: Source, url: str, what: str, body: bytes | None = None):
    headers = {"User-Agent": "chatgui-model-download"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=METADATA_TIMEOUT) as answer:
            raw = answer.read(MAX_METADATA_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise SourceUnreachable(f"{source.label}: the hub answered {e.code} when asked for {what}") from None
    except (urllib.error.URLError, OSError) as e:
        raise SourceUnreachable(f"{source.label}: the hub could not be reached ({e})") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise ModelFetchError(f"{source.label}: the hub's answer about {what} is too large")
    try:
        return json.loads(raw)
    except ValueError:
        raise ModelFetchError(f"{source.label}: the hub's answer about {what} is not JSON") from None


def commit_of(source: Source, base: str | None = None) -> str:
    """The commit a revision names now (a commit is itself)."""
    if _COMMIT.fullmatch(source.revision):
        return source.revision
    info = _ask(source, f"{base or hub_url()}/api/models/{_quote(source.repo)}/revision/"
                        f"{urllib.parse.quote(source.revision, safe='')}", "the revision")
    commit = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        raise ModelFetchError(f"{source.label}: the hub gives no commit for revision {source.revision!r}")
    return commit


def file_metadata(source: Source, base: str | None = None) -> HubFile:
    """The file's sha256 and size as the hub records them, at the commit its revision names now.
    SourceUnreachable when the hub cannot be asked (offline, an HTTP error, no such file);
    ModelFetchError when its answer makes no sense."""
    commit = commit_of(source, base)
    entries = _ask(source, f"{base or hub_url()}/api/models/{_quote(source.repo)}/paths-info/{commit}",
                   "the file's sha256", urllib.parse.urlencode({"paths": source.path}).encode())
    return _parse(source, entries, commit)


def _parse(source: Source, entries, commit: str) -> HubFile:
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
            return HubFile(sha, size, commit)
    raise SourceUnreachable(f"{source.label}: the hub has no such file at this revision")

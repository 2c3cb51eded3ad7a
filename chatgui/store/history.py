"""Chat history on disk: one `<id>.json` file per chat in the chats folder.

The store is defensive because these files outlive program versions and can be damaged:
- a broken file (not JSON, not UTF-8, wrong shape, too large) is renamed to `<name>.corrupt`
  and reported once in `problems`; the other chats still load;
- a file from a newer chatgui (schema > SCHEMA), an unreadable file or a folder in the way is
  left untouched, reported once per store, and never overwritten: save() of that id raises;
- writes are atomic, so a crash or a full disk leaves the previous version intact.
Listing is cheap: summaries are cached in `.index.json`, keyed by each file's mtime and size.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from chatgui.common import paths
from .atomic import atomic_write_bytes, atomic_write_text
from .chat import Chat, ChatFormatError
from .errors import StoreError, StoreProblem, describe_os_error
from .export import SCHEMA, export_json, export_markdown
from .files import FileTooLarge, NotRegularFile, move_aside, read_capped

MAX_CHAT_FILE_BYTES = 64 * 1024 * 1024
INDEX_NAME = ".index.json"
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_STALE_TEMP_SECONDS = 3600  # temp files this old are leftovers of a crash, not a write in progress


@dataclass(frozen=True)
class ChatSummary:
    id: str
    title: str          # the chat's title, or one made from its first message ("" if none)
    updated: float      # epoch seconds
    path: Path


class _Unusable(Exception):
    """A chat file the store cannot use. `broken`: move it aside; otherwise leave it alone."""

    def __init__(self, reason: str, broken: bool):
        super().__init__(reason)
        self.reason = reason
        self.broken = broken


class HistoryStore:
    export_markdown = staticmethod(export_markdown)
    export_json = staticmethod(export_json)

    def __init__(self, chats_dir: Path | str | None = None, *, max_file_bytes: int = MAX_CHAT_FILE_BYTES):
        self.dir = Path(chats_dir) if chats_dir is not None else paths.chats_dir()
        self.max_file_bytes = max_file_bytes
        self.problems: list[StoreProblem] = []   # new ones are appended; see take_problems()
        self._blocked: set[str] = set()          # ids whose file could not be read: never overwrite
        self._verified: set[str] = set()         # ids whose file this store has read (or written)
        self._reported: set[tuple[Path, str]] = set()
        self._index: dict[str, list] | None = None   # file name -> [mtime_ns, size, title, updated]
        self._index_dirty = False
        self._search_cache: dict[str, tuple[int, int, str]] = {}  # name -> (mtime_ns, size, text)

    def take_problems(self) -> list[StoreProblem]:
        """Return the problems not yet taken and forget them (the UI shows each once)."""
        taken, self.problems = self.problems, []
        return taken

    # ---- public operations -----------------------------------------------------------------

    def list_chats(self) -> list[ChatSummary]:
        """Loadable chats, newest first. Broken files found on the way are dealt with and reported."""
        self._load_index()
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return []
        except OSError as err:
            raise StoreError.wrap("Could not list the chats in", self.dir, err) from err
        summaries, seen = [], set()
        for entry in entries:
            if entry.name.startswith("."):
                self._remove_if_stale_temp(entry)
                continue
            chat_id = self._id_from_name(entry.name)
            if chat_id is None:
                continue  # not ours (an export, a .corrupt file ...): leave it be
            seen.add(entry.name)
            summary = self._summary(entry, chat_id)
            if summary is not None:
                summaries.append(summary)
        for name in set(self._index) - seen:
            del self._index[name]
            self._index_dirty = True
        self._save_index()
        summaries.sort(key=lambda s: s.updated, reverse=True)
        return summaries

    def load(self, chat_id: str) -> Chat:
        path = self.path_for(chat_id)
        if not os.path.lexists(path):
            raise StoreError(f"The chat {chat_id} no longer exists.", path)
        try:
            chat = self._read(path)
        except _Unusable as bad:
            self._handle_unusable(path, bad)
            raise StoreError(f"Could not open the chat {path.name}: {bad.reason}.", path) from None
        self._remember(path, chat)
        return chat

    def save(self, chat: Chat) -> None:
        """Write the chat atomically. Raises StoreError (old file intact) if that is not possible."""
        path = self.path_for(chat.id)
        self._check_may_overwrite(chat.id, path)
        data = _encode(chat)
        if len(data) > self.max_file_bytes:
            raise StoreError(f"The chat {chat.title or chat.id} is too large to save "
                             f"({len(data) // (1024 * 1024)} MB).", path)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError.wrap("Could not create the chats folder", self.dir, err) from err
        atomic_write_bytes(path, data)
        self._remember(path, chat)

    def delete(self, chat_id: str) -> None:
        path = self.path_for(chat_id)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            raise StoreError.wrap("Could not delete", path, err) from err
        if self._index is not None and self._index.pop(path.name, None) is not None:
            self._index_dirty = True
        self._verified.discard(chat_id)
        self._blocked.discard(chat_id)

    def search(self, query: str) -> list[str]:
        """Ids of chats whose title or any message (every branch) contains `query`, ignoring case."""
        needle = query.strip().casefold()
        found = []
        for s in self.list_chats():
            if not needle or needle in s.title.casefold() or needle in self._searchable_text(s.path):
                found.append(s.id)
        return found

    def path_for(self, chat_id: str) -> Path:
        if not isinstance(chat_id, str) or not _ID_RE.fullmatch(chat_id):
            raise StoreError(f"Invalid chat id {chat_id!r}.")  # also keeps paths inside self.dir
        return self.dir / f"{chat_id}.json"

    # ---- reading ---------------------------------------------------------------------------

    def _read(self, path: Path) -> Chat:
        try:
            data = read_capped(path, self.max_file_bytes)
        except FileTooLarge as err:
            raise _Unusable(str(err), broken=True) from None
        except NotRegularFile as err:
            raise _Unusable(str(err), broken=False) from None
        except OSError as err:
            raise _Unusable(f"it cannot be read ({describe_os_error(err)})", broken=False) from None
        try:
            raw = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise _Unusable("it is not UTF-8 text", broken=True) from None
        except (ValueError, RecursionError) as err:
            raise _Unusable(f"it is not valid JSON ({err})", broken=True) from None
        if not isinstance(raw, dict):
            raise _Unusable("it does not contain a chat", broken=True)
        schema = raw.get("schema")
        if type(schema) is not int or schema < 1:
            raise _Unusable("it has no valid format version", broken=True)
        if schema > SCHEMA:
            raise _Unusable(f"it was written by a newer version of chatgui (format {schema})", broken=False)
        try:
            chat = Chat.from_dict(raw)
        except ChatFormatError as err:
            raise _Unusable(str(err), broken=True) from None
        chat.id = path.stem  # the file name wins, so saving goes back to the same file
        return chat

    def _summary(self, entry: os.DirEntry, chat_id: str) -> ChatSummary | None:
        path = Path(entry.path)
        try:
            st = entry.stat()
        except OSError as err:
            self._handle_unusable(path, _Unusable(f"it cannot be read ({describe_os_error(err)})", False))
            return None
        cached = self._index.get(entry.name)
        if cached and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            self._verified.add(chat_id)
            return ChatSummary(chat_id, cached[2], cached[3], path)
        try:
            chat = self._read(path)
        except _Unusable as bad:
            self._handle_unusable(path, bad)
            return None
        self._remember(path, chat, st)
        return ChatSummary(chat_id, self._index[entry.name][2], chat.updated, path)

    def _searchable_text(self, path: Path) -> str:
        try:
            st = path.stat()
            hit = self._search_cache.get(path.name)
            if hit and hit[:2] == (st.st_mtime_ns, st.st_size):
                return hit[2]
            chat = self._read(path)
        except OSError:
            return ""  # vanished since listing
        except _Unusable as bad:
            self._handle_unusable(path, bad)
            return ""
        text = "\n".join(m.content for m in chat.messages.values()).casefold()
        self._search_cache[path.name] = (st.st_mtime_ns, st.st_size, text)
        return text

    # ---- bookkeeping -----------------------------------------------------------------------

    def _handle_unusable(self, path: Path, bad: _Unusable) -> None:
        chat_id = path.stem
        self._verified.discard(chat_id)
        if self._index is not None and self._index.pop(path.name, None) is not None:
            self._index_dirty = True
        if bad.broken:
            try:
                moved = move_aside(path)
            except OSError as err:
                action = f"left in place: it could not be moved aside ({describe_os_error(err)})"
            else:
                # Renamed: it will not be met again, and a new chat may take the name.
                self._blocked.discard(chat_id)
                self.problems.append(StoreProblem(path, bad.reason, f"moved to {moved.name}"))
                return
        else:
            action = "left untouched"
        self._blocked.add(chat_id)
        if (path, bad.reason) not in self._reported:  # once per store, though met at every listing
            self._reported.add((path, bad.reason))
            self.problems.append(StoreProblem(path, bad.reason, action))

    def _check_may_overwrite(self, chat_id: str, path: Path) -> None:
        if chat_id not in self._blocked and chat_id not in self._verified and os.path.lexists(path):
            # A file this store has never read: only replace it if it is a chat we understand.
            try:
                self._read(path)
            except _Unusable as bad:
                self._handle_unusable(path, bad)
        if chat_id in self._blocked:
            raise StoreError(f"Not saving {path.name}: the file there could not be read, "
                             "and saving would destroy it.", path)

    def _remember(self, path: Path, chat: Chat, st: os.stat_result | None = None) -> None:
        self._verified.add(chat.id)
        self._blocked.discard(chat.id)
        self._load_index()
        try:
            st = st or path.stat()
        except OSError:
            return
        title = chat.title or chat.title_from_first_message()
        self._index[path.name] = [st.st_mtime_ns, st.st_size, title, chat.updated]
        self._index_dirty = True

    def _id_from_name(self, name: str) -> str | None:
        if name.endswith(".json") and _ID_RE.fullmatch(name[:-5]):
            return name[:-5]
        return None

    def _remove_if_stale_temp(self, entry: os.DirEntry) -> None:
        if not entry.name.endswith(".tmp"):
            return
        try:
            if entry.is_file(follow_symlinks=False) and time.time() - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                os.unlink(entry.path)
        except OSError:
            pass

    def _load_index(self) -> None:
        if self._index is not None:
            return
        self._index = {}
        try:
            raw = json.loads(read_capped(self.dir / INDEX_NAME, self.max_file_bytes))
        except (OSError, ValueError, RecursionError, FileTooLarge, NotRegularFile):
            return  # only a cache: start afresh
        entries = raw.get("entries") if isinstance(raw, dict) and raw.get("schema") == 1 else None
        for name, e in (entries if isinstance(entries, dict) else {}).items():
            if (isinstance(e, list) and len(e) == 4 and type(e[0]) is int and type(e[1]) is int
                    and isinstance(e[2], str) and type(e[3]) in (int, float)):
                self._index[name] = e

    def _save_index(self) -> None:
        if not self._index_dirty:
            return
        try:
            atomic_write_text(self.dir / INDEX_NAME,
                              json.dumps({"schema": 1, "entries": self._index}, ensure_ascii=False))
            self._index_dirty = False
        except StoreError:
            pass  # a read-only folder: list without the cache


def _encode(chat: Chat) -> bytes:
    doc = {"schema": SCHEMA, **chat.to_dict()}
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))  # compact: the C encoder
    except (TypeError, ValueError) as err:
        raise StoreError(f"The chat contains data that cannot be saved: {err}") from err
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \u-escape everything instead of failing
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")

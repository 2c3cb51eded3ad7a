"""Reading a SQLite -wal file the way SQLite's recovery does, without SQLite and without writing.

SQLite trusts the frames of a -wal up to the first one whose salts or checksum fail, and uses
them up to the last commit among those; everything after is dropped without a word. A killed
writer leaves at most its own unfinished transaction there. Damage leaves more: commits of the
same -wal (same salts) after the frame that fails. read_wal counts those, so the store can refuse
to open (and so to checkpoint away) a -wal that would lose saved chats silently.

File format: https://www.sqlite.org/fileformat2.html#walformat (32-byte header; frames of a
24-byte header and one page; a running checksum over each frame's first 8 bytes and page).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

_MAGIC = 0x377F0682          # | 1: checksums over big-endian words
_VERSION = 3007000
_HEADER = 32
_FRAME_HEADER = 24
_MASK = 0xFFFFFFFF


@dataclass
class WalState:
    pages: set[int] = field(default_factory=set)  # pages SQLite reads from the -wal (its committed frames)
    db_pages: int = 0        # the database's size in pages after the last commit SQLite reads (0: none)
    page_size: int = 0
    lost_commits: int = 0    # commits written to this -wal that SQLite cannot read (only damage does that)

    @property
    def damaged(self) -> bool:
        # One unreadable commit at the end can be a writer killed inside its commit (SQLite rewrites
        # checksums of frames it overwrote in place after writing the commit frame); two cannot.
        return self.lost_commits >= 2


def read_wal(path: Path) -> WalState:
    """What SQLite's recovery would take from the -wal at `path` (an empty state when there is
    none). Raises OSError when it cannot be read."""
    state = WalState()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return state
    with f:
        header = f.read(_HEADER)
        if len(header) < _HEADER:
            return state
        magic, version, page_size, _seq, salt1, salt2, sum1, sum2 = struct.unpack(">8I", header)
        if version != _VERSION or page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
            return state   # not a -wal header at all: SQLite ignores the file
        state.page_size = page_size
        big_endian = magic & 1
        valid = magic & ~1 == _MAGIC and _checksum(header[:24], 0, 0, big_endian) == (sum1, sum2)
        salts = header[16:24]
        committed: set[int] = set()
        pending: set[int] = set()
        running = (sum1, sum2)
        while True:
            frame = f.read(_FRAME_HEADER)
            if len(frame) < _FRAME_HEADER:
                break
            page, commit = struct.unpack(">II", frame[:8])
            if valid:   # still in the part SQLite reads: check this frame as it would
                data = f.read(page_size)
                if len(data) < page_size:
                    break
                ok = frame[8:16] == salts and page != 0
                if ok:
                    check = _checksum(data, *_checksum(frame[:8], *running, big_endian), big_endian)
                    ok = check == struct.unpack(">II", frame[16:24])
                if ok:
                    running = check
                    pending.add(page)
                    if commit:
                        committed |= pending
                        pending = set()
                        state.db_pages = commit
                    continue
                valid = False
            else:
                f.seek(page_size, 1)
            if frame[8:16] == salts and commit:
                state.lost_commits += 1
        state.pages = committed
    return state


def _checksum(data: bytes, s1: int, s2: int, big_endian: int) -> tuple[int, int]:
    """SQLite's WAL checksum (walChecksumBytes): pairs of 32-bit words, chained through s1, s2."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    pairs = iter(words)
    for a, b in zip(pairs, pairs):
        s1 = (s1 + a + s2) & _MASK
        s2 = (s2 + b + s1) & _MASK
    return s1, s2

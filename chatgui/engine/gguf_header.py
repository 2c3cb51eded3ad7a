"""A fast, defensive parser for the GGUF header (metadata and tensor table).

gguf.GGUFReader builds a numpy view per array element, which takes seconds on a 49k-token
vocabulary; this reads the same layout with struct in tens of milliseconds. The type ids come
from the gguf package. Every count is checked against the bytes left before anything is
allocated, so a hostile header cannot ask for gigabytes.
"""
from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, islice

import numpy as np

from gguf import GGUF_DEFAULT_ALIGNMENT, GGUFValueType

MAX_TENSORS = 100_000
MAX_KV = 100_000
MAX_STRING = 64 << 20
MAX_DIMS = 4
MAX_STRING_ARRAY = 4_000_000   # texts in one array: real vocabularies and merges stay under 600k
MAX_NESTING = 8        # arrays of arrays: real files nest one level at most

_SCALAR = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}


class HeaderError(ValueError):
    pass


class StringArray(Sequence):
    """A GGUF array of strings, each decoded when it is read. Decoding a 262k-token vocabulary
    takes ~0.1 s, and a model whose tokenizer comes from the cache reads a handful of its
    entries (the BOS and EOS names); building a tokenizer reads them all, once (tolist).

    starts[i] is where string i's bytes begin; they end 8 bytes (the next one's length) before
    the next one begins, and the last one at `stop`."""

    def __init__(self, buf: memoryview, starts: array, stop: int):
        self._buf, self._starts, self._stop = buf, starts, stop
        self._all: list[str] | None = None

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i):
        if self._all is not None:
            return self._all[i]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._starts)
        if not -n <= i < n:
            raise IndexError("string index out of range")
        i %= n
        end = self._starts[i + 1] - 8 if i + 1 < n else self._stop
        return str(self._buf[self._starts[i]:end], "utf-8", "replace")

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list[str]:
        if self._all is None:
            buf, starts = self._buf, self._starts
            ends = chain(islice(starts, 1, None), (self._stop + 8,))
            self._all = [str(buf[a:b - 8], "utf-8", "replace") for a, b in zip(starts, ends)]
        return self._all

    def release(self) -> None:
        """Forget the strings tolist() decoded (they are decoded again if asked for): a built
        tokenizer holds its own copy, and these stayed for as long as the file was open."""
        self._all = None

    def indices_of(self, texts) -> dict[str, int]:
        """{text: the index of its last entry} for those of texts the array holds, found in
        the raw bytes: nothing decoded or kept (tolist() of a 262k-token vocabulary takes
        ~0.1 s and ~20 MB for as long as the file is open)."""
        if self._all is not None:
            wanted = set(texts)
            return {t: i for i, t in enumerate(self._all) if t in wanted}
        if not len(self._starts):
            return {}
        base, starts, n = self._starts[0], self._starts, len(self._starts)
        raw = bytes(self._buf[base:self._stop])
        found = {}
        for text in texts:
            key = text.encode("utf-8")
            at = raw.rfind(key)
            while at >= 0:
                i = bisect_left(starts, base + at)      # (a match inside an entry is no entry)
                if i < n and starts[i] == base + at:
                    end = starts[i + 1] - 8 if i + 1 < n else self._stop
                    if end - starts[i] == len(key):
                        found[text] = i
                        break
                at = raw.rfind(key, 0, at + len(key) - 1)
        return found

    def __eq__(self, other):
        if isinstance(other, (StringArray, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"StringArray({len(self)} strings)"


@dataclass
class Header:
    version: int
    metadata: dict
    tensors: list          # (name, ne tuple in ggml order, type id, offset from data start)
    data_offset: int


class _Cursor:
    def __init__(self, buf: memoryview):
        self.buf = buf
        self.pos = 0

    def need(self, n: int, what: str):
        if n < 0 or self.pos + n > len(self.buf):
            raise HeaderError(f"the file is truncated or corrupt (while reading {what})")

    def unpack(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        self.need(size, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v[0] if len(v) == 1 else v

    def string(self, what: str) -> str:
        n = self.unpack("<Q", what)
        if n > MAX_STRING:
            raise HeaderError(f"absurd string length {n} in {what}")
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def strings(self, count: int, what: str) -> StringArray:
        """count strings in a row, found (self.string's checks, in one tight loop) but not yet
        decoded: see StringArray."""
        buf, pos, end = self.buf, self.pos, len(self.buf)
        length = struct.Struct("<Q").unpack_from
        starts = array("q")
        start = starts.append
        for _ in range(count):
            if pos + 8 > end:
                self.pos = pos
                self.need(8, what)
            n = length(buf, pos)[0]
            pos += 8
            if n > MAX_STRING or pos + n > end:
                self.pos = pos
                if n > MAX_STRING:
                    raise HeaderError(f"absurd string length {n} in {what}")
                self.need(n, what)
            start(pos)
            pos += n
        self.pos = pos
        return StringArray(buf, starts, pos)

    def value(self, vtype: int, what: str, depth: int = 0):
        try:
            vt = GGUFValueType(vtype)
        except ValueError:
            raise HeaderError(f"unknown value type {vtype} in {what}") from None
        if vt == GGUFValueType.STRING:
            return self.string(what)
        if vt == GGUFValueType.ARRAY:
            etype, count = self.unpack("<IQ", what)
            try:
                et = GGUFValueType(etype)
            except ValueError:
                raise HeaderError(f"unknown array element type {etype} in {what}") from None
            if et == GGUFValueType.STRING:
                # Each string needs at least its 8-byte length: bound the count before looping.
                self.need(count * 8, what)
                if count > MAX_STRING_ARRAY:   # finding each one costs a Python step: 10M took 4.7 s
                    raise HeaderError(f"absurd number of texts ({count:,}) in {what}")
                return self.strings(count, what)
            if et == GGUFValueType.ARRAY:
                if depth >= MAX_NESTING:   # each level is a Python call: 100,000 would overflow the stack
                    raise HeaderError(f"arrays nested more than {MAX_NESTING} deep in {what}")
                self.need(count * 12, what)
                return [self.value(GGUFValueType.ARRAY, what, depth + 1) for _ in range(count)]
            fmt = _SCALAR[et]
            size = struct.calcsize(fmt)
            self.need(count * size, what)
            # numpy reads them ~10x faster than struct (a vocabulary's scores and types: 262k each)
            vals = np.frombuffer(self.buf, dtype=np.dtype(fmt), count=count, offset=self.pos).tolist()
            self.pos += count * size
            return vals
        return self.unpack(_SCALAR[vt], what)


def parse_header(buf: memoryview) -> Header:
    c = _Cursor(buf)
    magic = bytes(buf[:4])
    if magic != b"GGUF":
        raise HeaderError(f"not a GGUF file (magic {magic!r})")
    c.pos = 4
    version = c.unpack("<I", "version")
    if version not in (2, 3):
        if version & 0xFFFF == 0:
            raise HeaderError("big-endian GGUF files are not supported")
        raise HeaderError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = c.unpack("<QQ", "counts")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise HeaderError(f"absurd counts in header ({n_tensors} tensors, {n_kv} metadata fields)")
    meta = {}
    for i in range(n_kv):
        key = c.string(f"metadata key #{i}")
        vtype = c.unpack("<I", f"type of {key!r}")
        meta[key] = c.value(vtype, f"metadata {key!r}")
    tensors = []
    for i in range(n_tensors):
        name = c.string(f"tensor name #{i}")
        n_dims = c.unpack("<I", f"dims of tensor {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise HeaderError(f"tensor {name!r} has {n_dims} dimensions")
        ne = c.unpack(f"<{n_dims}Q", f"shape of tensor {name!r}")
        ne = (ne,) if n_dims == 1 else tuple(ne)
        type_id, offset = c.unpack("<IQ", f"type of tensor {name!r}")
        tensors.append((name, tuple(int(d) for d in ne), int(type_id), int(offset)))
    align = meta.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise HeaderError(f"invalid alignment {align!r}")
    data_offset = -(-c.pos // align) * align
    return Header(version, meta, tensors, data_offset)

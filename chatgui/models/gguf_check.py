"""Is a downloaded file a whole GGUF model? Its header and tensor table are read (values skipped)
and every tensor's bytes must lie inside the file, the data ending where the file ends.

A file spliced from two downloads, cut short, or padded with a server's error page passes the
magic-bytes check; here its layout no longer adds up. The engine's own parser (engine/
gguf_header.py) is out of reach of this layer (no torch here) and reads far more than needed.
Type sizes come from the gguf package.
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_COUNT = 1 << 24           # tensors, metadata entries, array items: beyond any real model
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


class NotAWholeGGUF(ValueError):
    """The file's layout does not add up; str() says where."""


class _Reader:
    def __init__(self, buf, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int) -> int:
        if n < 0 or self.pos + n > self.size:
            raise NotAWholeGGUF(f"its header runs past the end of the file (at byte {self.pos:,})")
        at = self.pos
        self.pos += n
        return at

    def u32(self) -> int:
        return struct.unpack_from("<I", self.buf, self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack_from("<Q", self.buf, self.take(8))[0]

    def count(self, what: str) -> int:
        n = self.u64()
        if n > MAX_COUNT:
            raise NotAWholeGGUF(f"its header claims {n:,} {what}")
        return n

    def string(self) -> bytes:
        n = self.u64()
        return bytes(self.buf[self.take(n):self.pos])

    def skip_value(self, vtype: int, depth: int = 0) -> None:
        if vtype in _SCALAR_SIZES:
            self.take(_SCALAR_SIZES[vtype])
        elif vtype == _STRING:
            self.take(self.u64())
        elif vtype == _ARRAY and depth < 4:
            item, n = self.u32(), self.count("array items")
            if item in _SCALAR_SIZES:
                self.take(n * _SCALAR_SIZES[item])
            else:
                for _ in range(n):
                    self.skip_value(item, depth + 1)
        else:
            raise NotAWholeGGUF(f"its header holds an unknown value type {vtype} (at byte {self.pos:,})")


def check_gguf(path: Path) -> None:
    """Raise NotAWholeGGUF unless path's header, tensor table and size agree."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size < 24:
            raise NotAWholeGGUF(f"it is only {size} bytes long")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            r = _Reader(buf, size)
            if bytes(buf[r.take(4):r.pos]) != MAGIC:
                raise NotAWholeGGUF("it does not start with the GGUF magic bytes")
            version = r.u32()
            if version not in (2, 3):
                raise NotAWholeGGUF(f"it is GGUF version {version} (2 and 3 are known)")
            n_tensors, n_kv = r.count("tensors"), r.count("metadata entries")
            alignment = DEFAULT_ALIGNMENT
            for _ in range(n_kv):
                key, vtype = r.string(), r.u32()
                if key == b"general.alignment" and vtype == 4:
                    alignment = struct.unpack_from("<I", buf, r.pos)[0]
                r.skip_value(vtype)
            if alignment == 0 or alignment & (alignment - 1):
                raise NotAWholeGGUF(f"its alignment {alignment} is not a power of two")
            end = 0
            for _ in range(n_tensors):
                name = r.string()
                n_dims = r.u32()
                if n_dims > 8:
                    raise NotAWholeGGUF(f"tensor {name[:80]!r} claims {n_dims} dimensions")
                dims = [r.u64() for _ in range(n_dims)]
                ttype, offset = r.u32(), r.u64()
                try:
                    block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
                except (ValueError, KeyError):
                    raise NotAWholeGGUF(f"tensor {name[:80]!r} has an unknown type {ttype}") from None
                elements = 1
                for d in dims:
                    elements *= d
                if elements % block or offset % alignment:
                    raise NotAWholeGGUF(f"tensor {name[:80]!r} has a size or place its type does not allow")
                end = max(end, offset + elements // block * block_bytes)
            data_start = -(-r.pos // alignment) * alignment
    expected = data_start + end
    if size < expected:
        raise NotAWholeGGUF(f"its tensors need {expected:,} bytes, the file has {size:,}")
    if size - expected >= max(alignment, DEFAULT_ALIGNMENT):
        raise NotAWholeGGUF(f"it has {size - expected:,} bytes after its last tensor")

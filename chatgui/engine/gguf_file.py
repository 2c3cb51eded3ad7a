"""Reading GGUF files with the `gguf` package: metadata, validation, tensor access.

Model files come from strangers, so every read is checked: a bad file raises ModelLoadError
with the reason, quickly, and never triggers a huge allocation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .gguf_header import HeaderError, parse_header

GGUF_MAGIC = b"GGUF"
# Limits far above any real small model, far below what would exhaust memory.
MAX_LAYERS = 512
MAX_DIM = 65536
MAX_VOCAB = 1_048_576
MAX_CONTEXT = 1 << 21
MAX_HEADS = 1024


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]     # torch order (rows, cols): the reverse of ggml's ne[]
    qtype: int                 # gguf.GGMLQuantizationType value
    qtype_name: str
    data: np.ndarray           # raw bytes or typed view into the memory-mapped file


class GGUFFile:
    """A validated, memory-mapped GGUF file. Tensors stay on disk until asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        p = self.path
        if not p.exists():
            raise ModelLoadError(p, "file not found")
        if p.is_dir():
            raise ModelLoadError(p, "this is a folder, not a .gguf file")
        size = p.stat().st_size
        if size == 0:
            raise ModelLoadError(p, "the file is empty")
        try:
            with open(p, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ModelLoadError(p, f"cannot read the file ({e.strerror or e})") from e
        if magic != GGUF_MAGIC:
            raise ModelLoadError(p, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
        if size < 24:
            raise ModelLoadError(p, "the file is truncated (header incomplete)")
        try:
            # Copy-on-write: torch needs writable memory to wrap it without a copy; nothing is
            # ever written to it, so every page stays shared with the page cache.
            self.buf = np.memmap(p, mode="c")
            header = parse_header(memoryview(self.buf))
        except HeaderError as e:
            raise ModelLoadError(p, str(e)) from e
        except MemoryError as e:
            raise ModelLoadError(p, "the file's header asks for absurd amounts of memory") from e
        except OSError as e:
            raise ModelLoadError(p, f"cannot read the file ({e.strerror or e})") from e
        self.size = size
        self.version = header.version
        self.metadata = header.metadata
        self._data_offset = header.data_offset
        self.tensors = self._read_tensors(header.tensors)

    # -- metadata -------------------------------------------------------------------------------
    def get(self, key: str, default=None):
        return self.metadata.get(key, default)

    def require(self, key: str):
        if key not in self.metadata:
            raise ModelLoadError(self.path, f"metadata field {key!r} is missing")
        return self.metadata[key]

    def get_int(self, key: str, default: int | None = None, *, lo: int = 0, hi: int = 1 << 40) -> int:
        v = self.get(key, default) if default is not None else self.require(key)
        if isinstance(v, (list, tuple)):  # some files store per-layer arrays; all equal for us
            if not v:
                raise ModelLoadError(self.path, f"metadata field {key!r} is an empty list")
            if len(set(v)) != 1:
                raise ModelLoadError(self.path, f"metadata field {key!r} varies per layer, which is not supported")
            v = v[0]
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise ModelLoadError(self.path, f"metadata field {key!r} is not a number ({v!r})") from None
        if not lo <= iv <= hi:
            raise ModelLoadError(self.path, f"metadata field {key!r} = {iv} is out of range [{lo}, {hi}]")
        return iv

    def get_float(self, key: str, default: float) -> float:
        v = self.get(key, default)
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ModelLoadError(self.path, f"metadata field {key!r} is not a number ({v!r})") from None
        if not np.isfinite(fv):
            raise ModelLoadError(self.path, f"metadata field {key!r} is not finite")
        return fv

    # -- tensors --------------------------------------------------------------------------------
    def _read_tensors(self, infos) -> dict[str, TensorInfo]:
        import gguf

        out = {}
        for name, ne, type_id, offset in infos:
            try:
                qtype = gguf.GGMLQuantizationType(type_id)
            except ValueError:
                raise ModelLoadError(self.path, f"tensor {name!r} has unknown type id {type_id}") from None
            shape = tuple(reversed(ne))
            if not shape or any(d <= 0 or d > 1 << 32 for d in shape):
                raise ModelLoadError(self.path, f"tensor {name!r} has a bogus shape {shape}")
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
            if shape[-1] % block:
                raise ModelLoadError(
                    self.path, f"tensor {name!r}: row length {shape[-1]} is not a multiple of {block}")
            n = 1
            for d in shape:
                n *= d
            nbytes = n // block * type_size
            start = self._data_offset + offset
            if offset < 0 or start + nbytes > self.size:
                raise ModelLoadError(
                    self.path, f"tensor {name!r} lies beyond the end of the file (truncated or bogus offset)")
            raw = self.buf[start:start + nbytes]
            if qtype == gguf.GGMLQuantizationType.F32:
                data = raw.view(np.float32).reshape(shape)
            elif qtype == gguf.GGMLQuantizationType.F16:
                data = raw.view(np.float16).reshape(shape)
            else:  # quantized (and BF16): rows of raw bytes, as gguf.quants expects
                data = raw.reshape(*shape[:-1], shape[-1] // block * type_size)
            out[name] = TensorInfo(name, shape, int(qtype), qtype.name, data)
        return out

    def tensor(self, name: str) -> TensorInfo:
        t = self.tensors.get(name)
        if t is None:
            raise ModelLoadError(self.path, f"tensor {name!r} is missing")
        return t

    def has(self, name: str) -> bool:
        return name in self.tensors

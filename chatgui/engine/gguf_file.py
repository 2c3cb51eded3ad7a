"""Reading GGUF files with the `gguf` package: metadata, validation, tensor access.

Model files come from strangers, so every read is checked: a bad file raises ModelLoadError
with the reason, quickly, and never triggers a huge allocation.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelFileChanged, ModelLoadError
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
    source: "GGUFFile | None" = field(default=None, repr=False, compare=False)

    def check_unchanged(self) -> None:
        """Raise ModelFileChanged before reading `data` from a file rewritten since it was loaded."""
        if self.source is not None:
            self.source.check_unchanged()


class GGUFFile:
    """A validated, memory-mapped GGUF file. Tensors stay on disk until asked for."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        p = self.path
        f = _open_regular_file(p)
        try:
            info = os.fstat(f.fileno())
            size = info.st_size
            magic = f.read(4)
        except OSError as e:
            f.close()
            raise ModelLoadError(p, f"cannot read the file ({e.strerror or e})") from e
        if size == 0 or magic != GGUF_MAGIC or size < 24:
            f.close()
            if size == 0:
                raise ModelLoadError(p, "the file is empty")
            if magic != GGUF_MAGIC:
                raise ModelLoadError(p, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
            raise ModelLoadError(p, "the file is truncated (header incomplete)")
        # The file stays open: check_unchanged asks it (not the path, which a download may have
        # renamed a new file onto, harmlessly) whether it was rewritten since.
        self._file, self._signature = f, (info.st_size, info.st_mtime_ns)
        try:
            # Copy-on-write: torch needs writable memory to wrap it without a copy; nothing is
            # ever written to it, so every page stays shared with the page cache.
            self.buf = np.memmap(f, mode="c")
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

    def check_unchanged(self) -> None:
        """Raise ModelFileChanged if the file was rewritten in place since it was loaded.

        The weights that stay in the file (embedding rows and the output head's exact rows, read
        per token) are mapped from it: once `cp` or `wget -O` truncates and rewrites the file,
        they are other bytes, and pages past its new end kill the process with SIGBUS. Reading
        them is preceded by this check (an fstat, about a microsecond), so a file changed
        between tokens is a clear error instead. A file replaced by renaming a new one onto its
        name is not a change: this process keeps reading the old one, intact."""
        try:
            info = os.fstat(self._file.fileno())
        except (OSError, ValueError):
            raise ModelFileChanged(self.path) from None
        if (info.st_size, info.st_mtime_ns) != self._signature:
            raise ModelFileChanged(self.path)

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
            out[name] = TensorInfo(name, shape, int(qtype), qtype.name, data, self)
        return out

    def tensor(self, name: str) -> TensorInfo:
        t = self.tensors.get(name)
        if t is None:
            raise ModelLoadError(self.path, f"tensor {name!r} is missing")
        return t

    def has(self, name: str) -> bool:
        return name in self.tensors


def _open_regular_file(p: Path):
    """The file opened for reading, after checking it is a regular file. Opened without blocking:
    a FIFO or a device named .gguf would otherwise block open() (and Add model) for ever."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ModelLoadError(p, "file not found") from None
    except IsADirectoryError:
        raise ModelLoadError(p, "this is a folder, not a .gguf file") from None
    except OSError as e:
        raise ModelLoadError(p, f"cannot read the file ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ModelLoadError(p, "this is a folder, not a .gguf file")
        if not stat.S_ISREG(mode):
            raise ModelLoadError(p, "this is not a regular file (a pipe or a device?), not a .gguf file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise

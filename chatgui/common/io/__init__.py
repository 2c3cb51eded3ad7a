"""Infrastructure every layer shares, written once: crash-safe file writes and sha256 (`files`),
the cross-process file lock (`lock`), the memory probe (`memory`), and the network-address rules
(`net`: loopback hosts, URLs without credentials). No Qt, no torch; raises OSError, never a layer's
own error type (the store wraps it in StoreError, the models layer in its own)."""
from __future__ import annotations

from .files import (atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_writer,
                    fsync_dir, remove_quietly, sha256_file)
from .lock import LockFile
from .memory import Memory, available_ram, system_ram
from .net import is_loopback_host, url_without_credentials

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "atomic_writer",
           "fsync_dir", "remove_quietly", "sha256_file", "LockFile", "Memory", "available_ram", "system_ram",
           "is_loopback_host", "url_without_credentials"]

"""The model catalog: catalog.json shipped with the package, read into plain dataclasses.

The JSON carries a catalog_version so a newer app can refuse (or migrate) an older layout.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

CATALOG_VERSION = 1


@dataclass(frozen=True)
class WheelChunk:
    dist: str          # distribution name as pip knows it
    version: str
    member: str        # path inside the wheel of this chunk's bytes


@dataclass(frozen=True)
class Source:
    kind: str                                   # "wheels" or "url"
    url: str = ""
    chunks: tuple[WheelChunk, ...] = ()

    @property
    def label(self) -> str:
        """How the user is told where bytes came from (in errors such as a hash mismatch)."""
        if self.kind == "url":
            return self.url
        first = self.chunks[0]
        more = f" (+{len(self.chunks) - 1} more chunks)" if len(self.chunks) > 1 else ""
        return f"package index wheel {first.dist}=={first.version}{more}"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    file: str
    parameters: str
    quantization: str
    size: int
    sha256: str
    licence: str
    languages: tuple[str, ...]
    context_length: int
    kind: str                 # "chat" or "completion" (a base model)
    good_at: str
    layers: int
    kv_heads: int
    head_dim: int
    sources: tuple[Source, ...] = field(default=())
    default: bool = False

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    def kv_cache_bytes(self, context_length: int, bytes_per_value: int = 4) -> int:
        """K and V for every layer at this context length, in float32: an upper bound (the engine
        keeps bfloat16 where the cache would outweigh a small model, and a sliding-window layer
        holds only its window and some room: chatgui.engine.loader._kv_bytes)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * context_length * bytes_per_value


def _source(raw: dict) -> Source:
    chunks = tuple(WheelChunk(c["dist"], c["version"], c["member"]) for c in raw.get("chunks", ()))
    return Source(kind=raw["kind"], url=raw.get("url", ""), chunks=chunks)


def _entry(raw: dict) -> CatalogEntry:
    return CatalogEntry(
        id=raw["id"], name=raw["name"], file=raw["file"], parameters=raw["parameters"],
        quantization=raw["quantization"], size=int(raw["size"]), sha256=raw["sha256"].lower(),
        licence=raw["licence"], languages=tuple(raw["languages"]), context_length=int(raw["context_length"]),
        kind=raw["kind"], good_at=raw["good_at"], layers=int(raw["layers"]), kv_heads=int(raw["kv_heads"]),
        head_dim=int(raw["head_dim"]), sources=tuple(_source(s) for s in raw["sources"]),
        default=bool(raw.get("default", False)))


def parse_catalog(text: str) -> tuple[CatalogEntry, ...]:
    data = json.loads(text)
    if data.get("catalog_version") != CATALOG_VERSION:
        raise ValueError(f"model catalog version {data.get('catalog_version')!r}, this app reads {CATALOG_VERSION}")
    return tuple(_entry(m) for m in data["models"])


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CatalogEntry, ...]:
    return parse_catalog(resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8"))


def get_entry(model_id: str) -> CatalogEntry:
    for e in load_catalog():
        if e.id == model_id:
            return e
    known = ", ".join(e.id for e in load_catalog())
    raise KeyError(f"no model {model_id!r} in the catalog (known: {known})")


def default_entry() -> CatalogEntry:
    return next(e for e in load_catalog() if e.default)

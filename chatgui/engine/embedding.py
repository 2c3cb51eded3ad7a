"""Embedding models run by the engine: a text -> one unit vector, for the knowledge index's
vector search (documents/vectors.py's Embedder Protocol, which EmbeddingModel implements).

Two kinds of GGUF files, as llama.cpp runs them in embedding mode:
- decoders (architecture qwen3 and the other plain-attention chat architectures of archs.py:
  Qwen3-Embedding): the chat Transformer without its output head; the text's vector is the
  final norm's output pooled as `<arch>.pooling_type` says (Qwen3-Embedding: 3, the last
  token, which its files make the EOS the tokenizer appends);
- BERT-style encoders (`bert`: bge, MiniLM; `nomic-bert`: nomic-embed-text): encoder.py, with
  the WordPiece tokenizer (wordpiece.py); pooled by the mean over all tokens or the [CLS] one.
The pooled vector is L2-normalised (llama.cpp's embedding examples normalise the same way).

Texts are embedded in batches of similar length, padded on the right: the decoder's causal
attention never lets a real token see the padding after it, and the encoder masks padding out
of its keys. A lock makes one model safe to share between the indexer's thread and a search.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .archs import ARCHS
from .encoder import ENCODER_ARCHS, load_encoder
from .errors import ModelLoadError
from .gguf_file import GGUFFile
from .loader import build_transformer, read_model_args
from .model import KVCache
from .tokenizer import build_tokenizer
from .wordpiece import WordPieceTokenizer

# llama.cpp's LLAMA_POOLING_TYPE_*
POOLING_NAMES = {1: "mean", 2: "cls", 3: "last"}
MAX_DECODER_TOKENS = 8192            # a chunk is ~200 tokens; the cap bounds a stray long text
BATCH_TOKENS = 4096                  # padded tokens per forward pass (memory: B x T x hidden)


def instruction_prefixes(name: str) -> tuple[str, str]:
    """(query prefix, document prefix) the model's card asks for, known by its name: retrieval
    models are trained with these, and recall drops without them."""
    n = name.lower().replace("_", "-")
    if "qwen3-embedding" in n:
        return ("Instruct: Given a question, retrieve passages of documents that answer it\nQuery:", "")
    if "nomic-embed" in n:
        return ("search_query: ", "search_document: ")
    if "bge-" in n and "-en" in n:
        return ("Represent this sentence for searching relevant passages: ", "")
    return ("", "")


class _PassThrough(torch.nn.Module):
    """The decoder's output head replaced: the final norm's output is what is pooled (and a
    151k-row vocabulary product per token is not computed)."""
    def forward(self, x):
        return x


class EmbeddingModel:
    """An embedding GGUF, loaded. `name` identifies the model's vectors in the index."""

    def __init__(self, path: Path, name: str, dim: int, pooling: str, context: int, encode, run,
                 query_prefix: str = "", document_prefix: str = ""):
        self.path = path
        self.name = name
        self.dim = dim
        self.pooling = pooling
        self.context = context
        self._encode = encode        # text -> ids, with the model's special tokens
        self._run = run              # (ids [B, T], lengths [B]) -> hidden [B, T, dim]
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self._lock = threading.Lock()

    # -- the Embedder Protocol ------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed([self.document_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([self.query_prefix + text])[0]

    # -- the work --------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        ids = self._encode(text)
        if len(ids) > self.context:      # keep the last token: the one LAST pooling reads (EOS / [SEP])
            ids = ids[:self.context - 1] + ids[-1:]
        return ids

    def embed(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """(len(texts), dim) float32: each text's pooled vector, unit length unless told not."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [self.tokenize(t) or self.tokenize(" ") for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        batch: list[int] = []
        for pos, i in enumerate(order):
            batch.append(i)
            nxt = order[pos + 1] if pos + 1 < len(order) else None
            if nxt is None or (len(batch) + 1) * len(ids[nxt]) > BATCH_TOKENS:
                out[batch] = self._pooled([ids[j] for j in batch])
                batch = []
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _pooled(self, rows: list[list[int]]) -> np.ndarray:
        lengths = torch.tensor([len(r) for r in rows])
        width = int(lengths.max())
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, :len(r)] = torch.tensor(r)
        with self._lock, torch.no_grad():
            hidden = self._run(ids, lengths).float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            pooled = hidden[torch.arange(len(rows)), lengths - 1]
        else:
            valid = (torch.arange(width)[None, :] < lengths[:, None]).unsqueeze(-1)
            pooled = (hidden * valid).sum(1) / lengths[:, None]
        return pooled.numpy()


def _pooling(gf: GGUFFile, arch: str, default: int) -> str:
    value = gf.get(f"{arch}.pooling_type", default)
    if value not in POOLING_NAMES:
        kind = {0: "none (a vector per token)", 4: "rank (a reranker)"}.get(value, repr(value))
        raise ModelLoadError(gf.path, f"pooling type {kind} is not supported for embeddings")
    return POOLING_NAMES[value]


def _decoder_runner(gf: GGUFFile, precision: str):
    args = read_model_args(gf)
    if (args.sliding_window or args.shortconv_layers or args.deltanet_layers or args.per_layer_dim
            or args.n_experts or args.layer_layout):
        raise ModelLoadError(gf.path, f"{args.arch} files are not supported as embedding models")
    context = min(args.train_context, MAX_DECODER_TOKENS)
    net = build_transformer(gf, args, torch.device("cpu"), context, precision, use_cache=False)
    net.output = _PassThrough()
    net.finish_loading()
    # the chat KV cache setup_cache made (~1.9 GB for Qwen3-Embedding-0.6B at 8k) is never used:
    # each batch gets a cache of its own shape
    for layer in net.layers:
        layer.attn.cache = None
    net._own_cache = None

    def run(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows = ids.shape[0]
        if ids.shape == (1, 1):          # (one token would take the chat decoder's one-row fast path)
            ids = ids.expand(2, 1)
        B, T = ids.shape
        # a cache of this batch's shape for each layer (the chat model's holds one row)
        for layer in net.layers:
            layer.attn.cache = KVCache(T, layer.attn.n_kv, layer.attn.hd, torch.float32, ids.device, rows=B)
        return net(ids, 0)[:rows]

    tok = build_tokenizer(gf.metadata, gf.path)

    def encode(text: str) -> list[int]:
        ids = tok.tokenizer.encode(text, add_special_tokens=False).ids
        if tok.add_bos and tok.bos_id is not None:
            ids = [tok.bos_id] + ids
        if tok.add_eos and tok.eos_id is not None:
            ids = ids + [tok.eos_id]
        return ids

    return args.dim, context, encode, run, 3


def _encoder_runner(gf: GGUFFile):
    tok = WordPieceTokenizer.from_metadata(gf.metadata, gf.path)
    net = load_encoder(gf, len(gf.get("tokenizer.ggml.tokens")))
    if gf.get("tokenizer.ggml.model") != "bert":
        raise ModelLoadError(gf.path, f"tokenizer {gf.get('tokenizer.ggml.model')!r} is not supported for "
                                      f"{net.args.arch} (WordPiece, 'bert', is)")
    return net.args.dim, net.args.context, tok.encode, net, 1


def load_embedding_model(path, precision: str = "auto", query_prefix: str | None = None,
                         document_prefix: str | None = None) -> EmbeddingModel:
    """Load an embedding GGUF (on the CPU). Raises ModelLoadError naming the file and reason.
    precision "float32": the dequantized reference (decoders; encoders are always float32).
    Prefixes: None takes what instruction_prefixes knows of the model's name."""
    gf = GGUFFile(path)
    arch = gf.get("general.architecture")
    try:
        if arch in ENCODER_ARCHS:
            dim, context, encode, run, default_pooling = _encoder_runner(gf)
        elif arch in ARCHS:
            dim, context, encode, run, default_pooling = _decoder_runner(gf, precision)
        else:
            raise ModelLoadError(gf.path, f"architecture {arch!r} is not supported for embeddings "
                                          f"(supported: {', '.join(ENCODER_ARCHS + tuple(ARCHS))})")
        pooling = _pooling(gf, arch, default_pooling)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise ModelLoadError(gf.path, f"its metadata is malformed ({type(e).__name__}: {e})") from e
    name = f"{gf.get('general.name') or ''} {Path(path).name}"
    guessed = instruction_prefixes(name)
    return EmbeddingModel(Path(path), Path(path).name, dim, pooling, context, encode, run,
                          guessed[0] if query_prefix is None else query_prefix,
                          guessed[1] if document_prefix is None else document_prefix)

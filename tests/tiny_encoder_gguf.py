"""Write tiny GGUF embedding models with random weights (fixed seed): BERT-style encoders
(`bert`: bge, MiniLM; `nomic-bert`: nomic-embed-text) with a WordPiece vocabulary, for the
embedding parity tests (tests/test_embeddings.py). Decoder embedding models (Qwen3-Embedding)
are tests/tiny_gguf.py's chat models with a pooling type in their metadata.

The tensors and keys are those llama.cpp reads for these architectures (src/models/bert.cpp,
the gguf package's MODEL_TENSORS): absolute position and token-type embeddings (bert) or RoPE
(nomic-bert), LayerNorms with biases after each residual, a GELU MLP (bert) or a SwiGLU one
(nomic-bert).
"""
from __future__ import annotations

import string
from pathlib import Path

import gguf
import numpy as np

# As the converter writes a WordPiece vocabulary: word-initial pieces carry U+2581, pieces that
# continue a word ("##ing" in the original) are bare.
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_WORDS = ["the", "hello", "world", "in", "on", "embed", "ding", "model", "search", "query", "document", "is",
              "of", "and", "to", "page", "answer"]
BERT_PIECES = ["ing", "er", "ed", "th", "he", "ll", "or", "ld", "\u0301"]


def bert_vocabulary() -> tuple[list[str], list[int]]:
    chars = list(string.ascii_lowercase + string.digits + ".,!?'-/:;()")
    tokens = BERT_SPECIALS + ["\u2581" + c for c in chars] + chars + ["\u2581" + w for w in BERT_WORDS] + BERT_PIECES
    types = [3, 2, 3, 3, 3] + [1] * (len(tokens) - len(BERT_SPECIALS))
    return tokens, types


def bert_tensor_shapes(arch: str, vocab: int, dim: int, hidden: int, n_layers: int, context: int) \
        -> dict[str, tuple[int, ...]]:
    """The tensors of a `bert` / `nomic-bert` file, in torch order (rows, cols)."""
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (vocab, dim), "token_types.weight": (2, dim)}
    if arch == "bert":
        shapes["position_embd.weight"] = (context, dim)
    shapes.update({"token_embd_norm.weight": (dim,), "token_embd_norm.bias": (dim,)})
    for i in range(n_layers):
        p = f"blk.{i}."
        if arch == "bert":
            for x in "qkv":
                shapes.update({p + f"attn_{x}.weight": (dim, dim), p + f"attn_{x}.bias": (dim,)})
            shapes.update({p + "attn_output.weight": (dim, dim), p + "attn_output.bias": (dim,)})
        else:
            shapes.update({p + "attn_qkv.weight": (3 * dim, dim), p + "attn_output.weight": (dim, dim)})
        shapes.update({p + "attn_output_norm.weight": (dim,), p + "attn_output_norm.bias": (dim,)})
        if arch == "bert":
            shapes.update({p + "ffn_up.weight": (hidden, dim), p + "ffn_up.bias": (hidden,),
                           p + "ffn_down.weight": (dim, hidden), p + "ffn_down.bias": (dim,)})
        else:
            shapes.update({p + "ffn_up.weight": (hidden, dim), p + "ffn_gate.weight": (hidden, dim),
                           p + "ffn_down.weight": (dim, hidden)})
        shapes.update({p + "layer_output_norm.weight": (dim,), p + "layer_output_norm.bias": (dim,)})
    return shapes


def _values(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name.endswith("norm.weight"):
        return 1 + 0.1 * rng.standard_normal(shape)
    if name.endswith(".bias"):
        return 0.1 * rng.standard_normal(shape)
    if name in ("token_embd.weight", "token_types.weight", "position_embd.weight"):
        return 0.5 * rng.standard_normal(shape)
    w = rng.standard_normal(shape) / np.sqrt(shape[-1])
    return w * 2 if name.endswith(("attn_q.weight", "attn_k.weight", "attn_qkv.weight")) else w


def write_tiny_encoder(path: Path, *, arch: str = "bert", pooling: int = 1, qtype: str = "F32", seed: int = 0,
                       dim: int = 64, n_layers: int = 2, n_heads: int = 4, hidden: int = 128,
                       context: int = 128, words: tuple[str, ...] = (), vocab_size: int = 0) -> Path:
    """A random-weight `bert` or `nomic-bert` embedding model. pooling: gguf.PoolingType
    (1 mean, 2 CLS). Row lengths are multiples of 32 so that block quant types hold them.
    words: more word-initial pieces; vocab_size: the vocabulary padded to this many tokens with
    [unusedN] ones (a model of a real model's shape, for benchmarks)."""
    from tiny_gguf import _add

    rng = np.random.default_rng(seed)
    tokens, types = bert_vocabulary()
    known = set(tokens)
    extra = [t for t in dict.fromkeys("\u2581" + w for w in words) if t not in known]
    extra += [f"[unused{i}]" for i in range(max(0, vocab_size - len(tokens) - len(extra)))]
    tokens, types = tokens + extra, types + [1] * len(extra)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}-{qtype}")
    w.add_context_length(context)
    w.add_embedding_length(dim)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(hidden)
    w.add_head_count(n_heads)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    if arch == "nomic-bert":
        w.add_rope_freq_base(1000.0)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(2)
    w.add_unk_token_id(1)
    w.add_bos_token_id(2)          # [CLS]
    w.add_sep_token_id(3)
    w.add_pad_token_id(0)
    w.add_mask_token_id(4)
    w.add_add_bos_token(True)
    w.add_add_sep_token(True)
    for name, shape in bert_tensor_shapes(arch, len(tokens), dim, hidden, n_layers, context).items():
        # (token types stay float32, as the converter keeps them: llama.cpp adds their row as it is)
        _add(w, name, _values(rng, name, shape), "F32" if name == "token_types.weight" else qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)

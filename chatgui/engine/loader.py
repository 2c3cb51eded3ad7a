"""GGUF metadata -> ModelArgs, GGUF tensors -> a ready Transformer."""
from __future__ import annotations

import math

import torch

from .errors import ModelLoadError
from .gguf_file import MAX_CONTEXT, MAX_DIM, MAX_HEADS, MAX_LAYERS, MAX_VOCAB, GGUFFile
from .model import ModelArgs, Transformer
from .quant import check_supported, dequantize

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3", "gemma3")


def read_model_args(gf: GGUFFile) -> ModelArgs:
    arch = gf.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelLoadError(gf.path, "metadata field 'general.architecture' is missing")
    if arch not in SUPPORTED_ARCHS:
        raise ModelLoadError(
            gf.path, f"architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHS)})")
    k = lambda name: f"{arch}.{name}"  # noqa: E731
    dim = gf.get_int(k("embedding_length"), lo=1, hi=MAX_DIM)
    n_layers = gf.get_int(k("block_count"), lo=1, hi=MAX_LAYERS)
    n_heads = gf.get_int(k("attention.head_count"), lo=1, hi=MAX_HEADS)
    n_kv = gf.get_int(k("attention.head_count_kv"), n_heads, lo=1, hi=MAX_HEADS)
    if n_heads % n_kv:
        raise ModelLoadError(gf.path, f"{n_heads} attention heads cannot be shared by {n_kv} KV heads")
    head_dim = gf.get_int(k("attention.key_length"), dim // n_heads if dim % n_heads == 0 else 0, lo=1, hi=MAX_DIM)
    hidden = gf.get_int(k("feed_forward_length"), lo=1, hi=MAX_DIM * 16)
    tokens = gf.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ModelLoadError(gf.path, "the file has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    vocab = gf.get_int(k("vocab_size"), len(tokens), lo=1, hi=MAX_VOCAB)
    rope_dim = gf.get_int(k("rope.dimension_count"), head_dim, lo=2, hi=head_dim)
    ctx = gf.get_int(k("context_length"), 2048, lo=1, hi=1 << 40)
    args = ModelArgs(
        arch=arch, dim=dim, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim,
        hidden_dim=hidden, vocab_size=vocab,
        norm_eps=gf.get_float(k("attention.layer_norm_rms_epsilon"), 1e-6),
        rope_base=gf.get_float(k("rope.freq_base"), 10000.0 if arch == "llama" else 1_000_000.0),
        rope_dim=rope_dim - rope_dim % 2,
        rope_interleaved=arch == "llama",
        train_context=min(ctx, MAX_CONTEXT),
        qkv_bias=arch == "qwen2",
        qk_norm=arch in ("qwen3", "gemma3"),
        tied_embeddings=not gf.has("output.weight"),
    )
    scaling = gf.get(k("rope.scaling.type"))
    if scaling == "linear":
        args.rope_scale = gf.get_float(k("rope.scaling.factor"), 1.0) or 1.0
    elif scaling not in (None, "none"):
        raise ModelLoadError(gf.path, f"RoPE scaling {scaling!r} is not supported")
    if arch == "gemma3":
        args.act = "gelu_tanh"
        args.embed_scale = math.sqrt(dim)
        args.post_norms = True
        args.sliding_window = gf.get_int(k("attention.sliding_window"), 512, lo=1, hi=MAX_CONTEXT)
        args.sliding_window_pattern = 6
        args.rope_base_local = 10000.0
        args.rope_base = gf.get_float(k("rope.freq_base"), 1_000_000.0)
    return args


def _check_shape(gf: GGUFFile, name: str, expected: tuple):
    t = gf.tensor(name)
    if tuple(t.shape) != tuple(expected):
        raise ModelLoadError(gf.path, f"tensor {name!r} has shape {t.shape}, expected {expected}")
    check_supported(gf.path, t)


def build_transformer(gf: GGUFFile, args: ModelArgs, device: torch.device, max_seq: int) -> Transformer:
    a = args
    q_out, kv_out = a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim
    # Check every shape before dequantizing anything: a bogus file fails fast and cheaply.
    expect = {"token_embd.weight": (a.vocab_size, a.dim), "output_norm.weight": (a.dim,)}
    if not a.tied_embeddings:
        expect["output.weight"] = (a.vocab_size, a.dim)
    for i in range(a.n_layers):
        p = f"blk.{i}."
        expect.update({
            p + "attn_norm.weight": (a.dim,), p + "attn_q.weight": (q_out, a.dim),
            p + "attn_k.weight": (kv_out, a.dim), p + "attn_v.weight": (kv_out, a.dim),
            p + "attn_output.weight": (a.dim, q_out), p + "ffn_norm.weight": (a.dim,),
            p + "ffn_gate.weight": (a.hidden_dim, a.dim), p + "ffn_up.weight": (a.hidden_dim, a.dim),
            p + "ffn_down.weight": (a.dim, a.hidden_dim),
        })
        if a.qkv_bias:
            expect.update({p + "attn_q.bias": (q_out,), p + "attn_k.bias": (kv_out,), p + "attn_v.bias": (kv_out,)})
        if a.qk_norm:
            expect.update({p + "attn_q_norm.weight": (a.head_dim,), p + "attn_k_norm.weight": (a.head_dim,)})
        if a.post_norms:
            expect.update({p + "post_attention_norm.weight": (a.dim,), p + "post_ffw_norm.weight": (a.dim,)})
    for name, shape in expect.items():
        _check_shape(gf, name, shape)

    def w(name):
        return dequantize(gf.path, gf.tensor(name))

    state = {"tok_embeddings.weight": w("token_embd.weight"), "norm.weight": w("output_norm.weight")}
    if not a.tied_embeddings:
        state["output.weight"] = w("output.weight")
    for i in range(a.n_layers):
        p, s = f"blk.{i}.", f"layers.{i}."
        state[s + "attn_norm.weight"] = w(p + "attn_norm.weight")
        state[s + "attn.wqkv.weight"] = torch.cat([w(p + "attn_q.weight"), w(p + "attn_k.weight"), w(p + "attn_v.weight")])
        if a.qkv_bias:
            state[s + "attn.wqkv.bias"] = torch.cat([w(p + "attn_q.bias"), w(p + "attn_k.bias"), w(p + "attn_v.bias")])
        if a.qk_norm:
            state[s + "attn.q_norm.weight"] = w(p + "attn_q_norm.weight")
            state[s + "attn.k_norm.weight"] = w(p + "attn_k_norm.weight")
        state[s + "attn.wo.weight"] = w(p + "attn_output.weight")
        state[s + "ffn_norm.weight"] = w(p + "ffn_norm.weight")
        state[s + "ffn.w13.weight"] = torch.cat([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")])
        state[s + "ffn.w2.weight"] = w(p + "ffn_down.weight")
        if a.post_norms:
            state[s + "attn_post_norm.weight"] = w(p + "post_attention_norm.weight")
            state[s + "ffn_post_norm.weight"] = w(p + "post_ffw_norm.weight")
    if any(not torch.isfinite(t).all() for t in state.values() if t.dim() == 1):
        raise ModelLoadError(gf.path, "the file holds NaN or infinite norm weights")

    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict(state, assign=True, strict=True)
    model = model.to(device)
    freq_factors = w("rope_freqs.weight") if gf.has("rope_freqs.weight") else None
    model.setup_cache(max_seq, freq_factors=freq_factors)
    return model.eval()

"""BERT-style encoders for embeddings: `bert` (bge, MiniLM, e5) and `nomic-bert`
(nomic-embed-text), as llama.cpp's src/models/bert.cpp computes them.

Unlike the chat Transformer (model.py): attention sees the whole text both ways (no causal
mask, no KV cache), LayerNorms with biases come after each residual add (post-norm), the
input is token + token-type (row 0: "sentence A") + absolute position embeddings, normed
(bert) or token + type with RoPE in each layer (nomic-bert, NeoX pairs), and the MLP is
GELU (bert) or SwiGLU (nomic-bert). A batch of texts of different lengths is padded on the
right, and padding is masked out of the keys.

Weights are dequantized to float32: these models are small (bge-small 33M parameters, nomic
137M), and float32 matmuls are the fastest CPU path for a batch of whole chunks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelLoadError
from .gguf_file import MAX_CONTEXT, MAX_DIM, MAX_HEADS, MAX_LAYERS, GGUFFile
from .quant import dequantize

ENCODER_ARCHS = ("bert", "nomic-bert")


@dataclass
class EncoderArgs:
    arch: str
    dim: int
    n_layers: int
    n_heads: int
    hidden: int
    context: int
    norm_eps: float
    rope_base: float = 10000.0


def read_encoder_args(gf: GGUFFile) -> EncoderArgs:
    arch = gf.get("general.architecture")
    k = lambda name: f"{arch}.{name}"  # noqa: E731
    args = EncoderArgs(arch=arch, dim=gf.get_int(k("embedding_length"), lo=1, hi=MAX_DIM),
                       n_layers=gf.get_int(k("block_count"), lo=1, hi=MAX_LAYERS),
                       n_heads=gf.get_int(k("attention.head_count"), lo=1, hi=MAX_HEADS),
                       hidden=gf.get_int(k("feed_forward_length"), lo=1, hi=MAX_DIM * 16),
                       context=gf.get_int(k("context_length"), 512, lo=1, hi=MAX_CONTEXT),
                       norm_eps=gf.get_float(k("attention.layer_norm_epsilon"), 1e-12),
                       rope_base=gf.get_float(k("rope.freq_base"), 10000.0))
    if args.dim % args.n_heads or (args.dim // args.n_heads) % 2:
        raise ModelLoadError(gf.path, f"{args.n_heads} heads do not divide a width of {args.dim} in even parts")
    if gf.get(k("attention.causal"), False):
        raise ModelLoadError(gf.path, "a causal BERT model is not supported")
    return args


def encoder_tensor_shapes(a: EncoderArgs, vocab: int) -> dict[str, tuple[int, ...]]:
    """The tensors the encoder needs (torch order); biases are optional (encoder_weights)."""
    d, h = a.dim, a.hidden
    shapes = {"token_embd.weight": (vocab, d), "token_embd_norm.weight": (d,)}
    if a.arch == "bert":
        shapes["position_embd.weight"] = (a.context, d)
    for i in range(a.n_layers):
        p = f"blk.{i}."
        shapes.update({p + "attn_output.weight": (d, d), p + "attn_output_norm.weight": (d,),
                       p + "ffn_up.weight": (h, d), p + "ffn_down.weight": (d, h),
                       p + "layer_output_norm.weight": (d,)})
        if a.arch == "nomic-bert":
            shapes.update({p + "attn_qkv.weight": (3 * d, d), p + "ffn_gate.weight": (h, d)})
    return shapes


class EncoderLayer(nn.Module):
    def __init__(self, a: EncoderArgs, w: dict[str, torch.Tensor | None], p: str):
        super().__init__()
        self.a = a
        if w.get(p + "attn_qkv.weight") is not None:
            self.qkv_w, self.qkv_b = w[p + "attn_qkv.weight"], w.get(p + "attn_qkv.bias")
        else:      # (bert files keep q, k and v apart: one matmul here all the same)
            self.qkv_w = torch.cat([w[p + f"attn_{x}.weight"] for x in "qkv"])
            biases = [w.get(p + f"attn_{x}.bias") for x in "qkv"]
            self.qkv_b = torch.cat(biases) if all(b is not None for b in biases) else None
        self.out_w, self.out_b = w[p + "attn_output.weight"], w.get(p + "attn_output.bias")
        self.attn_norm = (w[p + "attn_output_norm.weight"], w.get(p + "attn_output_norm.bias"))
        self.up_w, self.up_b = w[p + "ffn_up.weight"], w.get(p + "ffn_up.bias")
        self.gate_w = w.get(p + "ffn_gate.weight")
        self.down_w, self.down_b = w[p + "ffn_down.weight"], w.get(p + "ffn_down.bias")
        self.out_norm = (w[p + "layer_output_norm.weight"], w.get(p + "layer_output_norm.bias"))

    def forward(self, x, key_mask, rope):
        B, T, D = x.shape
        nh = self.a.n_heads
        hd = D // nh
        q, k, v = F.linear(x, self.qkv_w, self.qkv_b).view(B, T, 3, nh, hd).unbind(2)
        if rope is not None:
            q, k = rotate_half(q, *rope), rotate_half(k, *rope)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           attn_mask=key_mask, scale=1.0 / math.sqrt(hd))
        h = F.linear(y.transpose(1, 2).reshape(B, T, D), self.out_w, self.out_b) + x
        h = F.layer_norm(h, (D,), *self.attn_norm, eps=self.a.norm_eps)
        up = F.linear(h, self.up_w, self.up_b)
        if self.gate_w is not None:
            up = F.silu(F.linear(h, self.gate_w)) * up
        else:
            up = F.gelu(up, approximate="tanh")      # (ggml_gelu: the tanh form)
        out = F.linear(up, self.down_w, self.down_b) + h
        return F.layer_norm(out, (D,), *self.out_norm, eps=self.a.norm_eps)


def rotate_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """NeoX RoPE over the whole head: pairs (j, j + hd/2). x [B, T, heads, hd]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class BertEncoder(nn.Module):
    def __init__(self, a: EncoderArgs, w: dict[str, torch.Tensor | None]):
        super().__init__()
        self.args = a
        self.tok = w["token_embd.weight"]
        types = w.get("token_types.weight")
        self.type0 = types[0] if types is not None else None
        self.pos = w.get("position_embd.weight") if a.arch == "bert" else None
        self.norm = (w["token_embd_norm.weight"], w.get("token_embd_norm.bias"))
        self.layers = nn.ModuleList(EncoderLayer(a, w, f"blk.{i}.") for i in range(a.n_layers))
        self.requires_grad_(False)

    def _rope(self, T: int):
        hd = self.args.dim // self.args.n_heads
        inv = 1.0 / (self.args.rope_base ** (torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd))
        angles = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        return angles.cos().float()[None, :, None, :], angles.sin().float()[None, :, None, :]

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids [B, T] (padded on the right), lengths [B] -> hidden states [B, T, dim]."""
        B, T = ids.shape
        x = self.tok[ids]
        if self.type0 is not None:
            x = x + self.type0
        if self.pos is not None:
            x = x + self.pos[:T]
        x = F.layer_norm(x, (self.args.dim,), *self.norm, eps=self.args.norm_eps)
        valid = torch.arange(T)[None, :] < lengths[:, None]
        key_mask = valid[:, None, None, :] if bool((~valid).any()) else None
        rope = self._rope(T) if self.args.arch == "nomic-bert" else None
        for layer in self.layers:
            x = layer(x, key_mask, rope)
        return x


def load_encoder(gf: GGUFFile, vocab: int) -> BertEncoder:
    a = read_encoder_args(gf)
    expected = encoder_tensor_shapes(a, vocab)
    for name, shape in expected.items():
        if not gf.has(name):
            raise ModelLoadError(gf.path, f"tensor {name!r} is missing")
        if tuple(gf.tensor(name).shape) != shape:
            raise ModelLoadError(gf.path, f"tensor {name!r} has shape {gf.tensor(name).shape}, expected {shape}")
    if a.arch == "bert" and not all(gf.has(f"blk.{i}.attn_{x}.weight") for i in range(a.n_layers) for x in "qkv"):
        raise ModelLoadError(gf.path, "attention weights attn_q/k/v are missing")
    weights: dict[str, torch.Tensor | None] = {}
    for name in gf.tensors:
        if name.startswith(("token_", "position_", "blk.")):
            weights[name] = dequantize(gf.path, gf.tensor(name))
    for name, t in weights.items():
        if not torch.isfinite(t).all():
            raise ModelLoadError(gf.path, f"tensor {name} holds NaN or infinite values")
    types = weights.get("token_types.weight")
    if types is not None and (types.dim() != 2 or types.shape[1] != a.dim):
        raise ModelLoadError(gf.path, f"tensor 'token_types.weight' has shape {tuple(types.shape)}")
    return BertEncoder(a, weights)

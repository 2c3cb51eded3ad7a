"""The single-token decode step: the hot loop of generation.

Decoding one token of a small model on a CPU costs more in per-op overhead (Python, nn.Module
attribute lookups, the dispatcher, casts) than in arithmetic: the eager Transformer.forward spent
~15 ms a token on overhead next to ~13 ms of matmuls. So the decode step is this flat loop over
plain tensors gathered once from the Transformer, with as few dispatched ops as possible. It
computes what Transformer.forward computes for one token (tests/test_engine_model.py compares
them) and writes the same KV cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .rope import rope_row


@dataclass(slots=True)
class _Layer:
    attn_norm: torch.Tensor
    qkv: Callable
    qkv_dtype: torch.dtype
    q_norm: Callable | None         # RMSNorm.forward of the layer's norms, where it has them
    k_norm: Callable | None
    k_cache: torch.Tensor           # [1, n_kv, max_seq, head_dim]: the layer's KVCache
    v_cache: torch.Tensor
    window: int                     # 0: attends to every earlier position (and uses the global RoPE)
    wo: Callable
    wo_dtype: torch.dtype
    ffn_norm: torch.Tensor
    w13: Callable
    w13_dtype: torch.dtype
    w2: Callable
    w2_dtype: torch.dtype
    attn_post_norm: Callable | None
    ffn_post_norm: Callable | None


class Decoder:
    def __init__(self, net):
        a = net.args
        self.args = a
        self.eps = a.norm_eps
        self.embed = net.tok_embeddings.rows
        self.head = net.output.forward
        self.norm = net.norm.forward
        self.rope_global, self.rope_local = net.rope_global, net.rope_local
        self.gelu = a.act == "gelu_tanh"
        self.scale = net.layers[0].attn.scale if len(net.layers) else 1.0     # the same in every layer
        self._out: dict[torch.dtype, torch.Tensor] = {}
        self.layers = []
        for layer in net.layers:
            at, ff = layer.attn, layer.ffn
            qkv, qkv_dtype = at.wqkv.kernel()
            wo, wo_dtype = at.wo.kernel()
            w13, w13_dtype = ff.w13.kernel()
            w2, w2_dtype = ff.w2.kernel()
            self.layers.append(_Layer(
                layer.attn_norm.weight * a.dim ** 0.5, qkv, qkv_dtype,
                at.q_norm.forward if a.qk_norm else None, at.k_norm.forward if a.qk_norm else None,
                at.cache.k, at.cache.v, a.sliding_window if at.sliding else 0,
                wo, wo_dtype, layer.ffn_norm.weight * a.dim ** 0.5, w13, w13_dtype, w2, w2_dtype,
                layer.attn_post_norm.forward if a.post_norms else None,
                layer.ffn_post_norm.forward if a.post_norms else None))

    def _norm_row(self, x: torch.Tensor, scaled_weight: torch.Tensor, dtype) -> torch.Tensor:
        """RMSNorm of one row x [1, D] with weight * sqrt(D): x * w / sqrt(mean(x^2) + eps) written as
        x * (w * sqrt(D)) / sqrt(sum(x^2) + D * eps). A dot product is several times cheaper than
        pow + mean for one row, and writing the result straight into the next matmul's input
        dtype saves a cast."""
        flat = x.view(-1)
        r = torch.add(torch.dot(flat, flat), self.eps * flat.shape[0]).rsqrt_()
        out = self._out.get(dtype)
        if out is None or out.shape != x.shape:
            out = self._out[dtype] = torch.empty(x.shape, dtype=dtype, device=x.device)
        return torch.mul(x * r, scaled_weight, out=out)   # read by the next matmul before the next norm

    @torch.inference_mode()     # ~10% faster than no_grad here: no version counters or view tracking
    def step(self, token: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits [vocab] (float32) for the token after token (a [1] id tensor) at position pos;
        fills the cache at pos."""
        a = self.args
        nh, nkv, hd = a.n_heads, a.n_kv_heads, a.head_dim
        nqk = (nh + nkv) * hd
        x = self.embed(token)       # [1, dim] float32
        if a.embed_scale != 1.0:
            x = x * a.embed_scale
        grot, lrot = self.rope_global[pos], self.rope_local[pos]
        for L in self.layers:
            qkv = L.qkv(self._norm_row(x, L.attn_norm, L.qkv_dtype))[0]
            qk = qkv[:nqk].view(nh + nkv, hd)
            if L.q_norm is not None:
                qk = torch.cat([L.q_norm(qk[:nh]), L.k_norm(qk[nh:])])
            qk = rope_row(qk, lrot if L.window else grot, a.rope_dim)
            L.k_cache[0, :, pos] = qk[nh:]
            L.v_cache[0, :, pos] = qkv[nqk:].view(nkv, hd)
            lo = max(0, pos + 1 - L.window) if L.window else 0
            # Query heads grouped under the key/value head they share: no mask, no GQA expansion.
            y = F.scaled_dot_product_attention(qk[:nh].view(1, nkv, nh // nkv, hd), L.k_cache.narrow(2, lo, pos + 1 - lo),
                                               L.v_cache.narrow(2, lo, pos + 1 - lo), scale=self.scale)
            h = L.wo(y.view(1, nh * hd).to(L.wo_dtype))
            if L.attn_post_norm is not None:
                h = L.attn_post_norm(h)
            x.add_(h)         # x is this step's own tensor: no new allocation
            gate, up = L.w13(self._norm_row(x, L.ffn_norm, L.w13_dtype)).split(a.hidden_dim, dim=-1)
            gate = F.gelu(gate, approximate="tanh") if self.gelu else F.silu(gate)
            h = L.w2((gate * up).to(L.w2_dtype))
            if L.ffn_post_norm is not None:
                h = L.ffn_post_norm(h)
            x.add_(h)
        return self.head(self.norm(x))[0].float()

"""The single-token decode step: the hot loop of generation.

Decoding one token of a small model on a CPU costs more in per-op overhead (Python, nn.Module
attribute lookups, the dispatcher, allocations, casts) than in arithmetic: the eager
Transformer.forward spent ~15 ms a token on overhead next to ~13 ms of matmuls. So the decode
step is this flat loop over plain tensors gathered once from the Transformer, with as few
dispatched ops as possible, writing into buffers allocated once (whose views are therefore made
once too). It computes what Transformer.forward computes for one token
(tests/test_engine_model.py compares them) and writes the same KV cache.

RMSNorm is split around the matmul that follows it: x * w goes into the matmul, and the row's
1/rms, a scalar, multiplies the matmul's result instead, in the same op that casts that result
to float32 (a matmul is linear, so this is the same product; the bias, if any, is added after).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from .attention_math import temperature_at, written_attention
from .native_attention import DecodeAttention
from .native_linear import NativeLinear
from .rope import rope_row

if TYPE_CHECKING:
    from .model import KVCache, ModelArgs


def final_logits(args: ModelArgs, logits: torch.Tensor) -> torch.Tensor:
    """The head's output scaled (granite) and soft-capped (gemma2) where the model does so."""
    if args.logit_scale != 1.0:
        logits = logits / args.logit_scale
    if args.final_softcap:
        logits = torch.tanh(logits / args.final_softcap) * args.final_softcap
    return logits


@dataclass(slots=True)
class _Layer:
    attn_norm: torch.Tensor         # the norm's weight * sqrt(dim), see Decoder.x_ext
    qkv: Callable                   # the matmul without its bias
    qkv_dtype: torch.dtype
    qkv_bias: torch.Tensor | None
    qk_norm: torch.Tensor | None    # [nh + nkv, hd]: each q and k head's norm weight * sqrt(hd)
    kv: torch.Tensor                # [2, 1, n_kv, slots, head_dim]: the layer's KVCache
    k_cache: torch.Tensor           # its K and V, [1, n_kv, slots, head_dim]
    v_cache: torch.Tensor
    window: int                     # 0: attends to every earlier position (and uses the global RoPE)
    rope: bool                      # False: a layer without RoPE (smollm3's every 4th)
    cache: KVCache                  # (a sliding window's says where a position goes)
    wo: Callable
    wo_dtype: torch.dtype
    ffn_norm: torch.Tensor
    w13: Callable                   # without its bias
    w13_dtype: torch.dtype
    w13_bias: torch.Tensor | None
    w2: Callable
    w2_dtype: torch.dtype
    attn_post_norm: torch.Tensor | None     # the post-norms' weights * sqrt(dim) (Decoder._add_normed)
    ffn_post_norm: torch.Tensor | None
    moe: Callable | None = None     # a Mixture-of-Experts MLP (experts.MoEFeedForward) in w13/w2's place
    attend: Callable | None = None  # native_attention.DecodeAttention over this layer's cache, where it applies
    # On the native kernels, each product as one bound library call that also applies 1/rms and
    # the bias (qkv, w13) or adds its result to the residual stream (wo, w2): NativeProduct.bound
    qkv_call: Callable | None = None
    wo_call: Callable | None = None
    w13_call: Callable | None = None
    w2_call: Callable | None = None


class Decoder:
    @staticmethod
    def handles(a) -> bool:
        """Whether this step has every layer kind of a model with ModelArgs a; Transformer.forward
        runs the others (olmo2's norms, attention sinks, short convolutions, DeltaNet). Experts
        (qwen3moe, granitemoe) are their module, called on the normed row."""
        return a.pre_norms and not a.qk_norm_full and not a.attn_sinks and not a.dense_and_experts \
            and not a.shortconv_layers and not a.deltanet_layers and not a.attn_output_gate \
            and not a.layer_layout

    def __init__(self, net):
        a = net.args
        self.args = a
        dim, nh, nkv, hd, hidden = a.dim, a.n_heads, a.n_kv_heads, a.head_dim, a.hidden_dim
        f32 = dict(dtype=torch.float32, device=net.norm.weight.device)
        self.embed = net.tok_embeddings.rows
        self.head = net.output.forward
        self.final_norm = net.norm.weight * dim ** 0.5
        self.rope_global, self.rope_local = net.rope_global, net.rope_local
        self.gelu = a.act == "gelu_tanh"
        self.scale = net.layers[0].attn.scale if len(net.layers) else 1.0     # the same in every layer
        # The residual stream x, followed by one constant sqrt(dim * eps): the dot product of
        # x_ext with itself is sum(x^2) + dim * eps in one op, and with the norm weights scaled
        # by sqrt(dim), x * w / sqrt(that) is exactly x * w / sqrt(mean(x^2) + eps).
        self.x_ext = torch.zeros(dim + 1, **f32)
        self.x_ext[dim] = (dim * a.norm_eps) ** 0.5
        self.x = self.x_ext[:dim].view(1, dim)
        # [1, 1], not a scalar: a scalar would not promote the bf16 matmul results to float32.
        self.inv_rms = torch.empty(1, 1, **f32)
        self.sum_sq = self.inv_rms.view(())       # the same number, as torch.dot's 0-dim out
        self.one = torch.ones(1, 1, **f32)
        nqk = (nh + nkv) * hd
        self.qkv = torch.empty(1, nqk + nkv * hd, **f32)
        self.qk = self.qkv[0, :nqk].view(nh + nkv, hd)
        self.v = self.qkv[0, nqk:].view(nkv, hd)
        # Query heads grouped under the key/value head they share: no mask, no GQA expansion.
        self.q_grouped = self.qkv[0, :nh * hd].view(1, nkv, nh // nkv, hd)
        self.kv_new = self.qkv[0, nh * hd:].view(2, 1, nkv, hd)      # as KVCache.kv holds a position
        # The query in the KV cache's dtype where that is not float32 (attention takes one dtype;
        # loader.kv_cache_dtype), else None: used as it is.
        kv_dtype = net.layers[0].attn.cache.kv.dtype if len(net.layers) else torch.float32
        self.q_attn = None if kv_dtype == torch.float32 else \
            torch.empty(1, nkv, nh // nkv, hd, dtype=kv_dtype, device=self.x.device)
        # When every dim rotates, RoPE is one in-place complex multiply of the whole qkv buffer:
        # q and k rows by the position's rotation, v rows by 1 (the rows of `turns`); q/k norms,
        # where the model has them, are applied in place before it. Otherwise rope_row.
        self.whole_rope = a.rope_dim == hd
        # Per-head sums of squares of q and k, as one batched dot product [nh + nkv, 1, 1].
        self.qk_rows, self.qk_cols = self.qk.view(nh + nkv, 1, hd), self.qk.view(nh + nkv, hd, 1)
        self.qk_sum_sq = torch.empty(nh + nkv, 1, 1, **f32)
        self.qk_eps = hd * a.norm_eps
        self.post_eps = dim * a.norm_eps
        self.qkv_complex = torch.view_as_complex(self.qkv.view(nh + 2 * nkv, hd // 2, 2))
        self.turns = {id(rope): torch.ones(nh + 2 * nkv, hd // 2, dtype=torch.complex64, device=self.x.device)
                      for rope in (self.rope_global, self.rope_local)}
        self.h13 = torch.empty(1, 2 * hidden, **f32)
        self.gate, self.up = self.h13[:, :hidden], self.h13[:, hidden:]
        self.layers = []
        for layer in net.layers:
            at, ff = layer.attn, layer.ffn
            qkv, qkv_dtype = at.wqkv.kernel(with_bias=False)
            wo, wo_dtype = at.wo.kernel()
            moe = ff if a.n_experts else None
            if moe is None:
                w13, w13_dtype = ff.w13.kernel(with_bias=False)
                w2, w2_dtype = ff.w2.kernel()
            else:                   # (the module takes the normed row in float32)
                w13 = w2 = None
                w13_dtype = w2_dtype = torch.float32
            qk_norm = None
            if a.qk_norm:
                qk_norm = torch.cat([at.q_norm.weight.float().expand(nh, hd),
                                     at.k_norm.weight.float().expand(nkv, hd)]) * hd ** 0.5
            self.layers.append(_Layer(
                layer.attn_norm.weight * dim ** 0.5, qkv, qkv_dtype, at.wqkv.bias, qk_norm,
                at.cache.kv, at.cache.k, at.cache.v, a.sliding_window if at.sliding else 0, at.rope, at.cache,
                wo, wo_dtype, layer.ffn_norm.weight * dim ** 0.5, w13, w13_dtype, None if moe else ff.w13.bias, w2,
                w2_dtype, layer.attn_post_norm.weight.float() * dim ** 0.5 if a.post_norms else None,
                layer.ffn_post_norm.weight.float() * dim ** 0.5 if a.post_norms else None, moe))
        # Matmul inputs, one set per input dtype: normed x, attention output, gated activation.
        self.inputs: dict[torch.dtype, tuple[torch.Tensor, ...]] = {}
        for L in self.layers:
            for dt in (L.qkv_dtype, L.wo_dtype, L.w13_dtype, L.w2_dtype):
                if dt not in self.inputs:
                    attn = torch.empty(1, nkv, nh // nkv, hd, dtype=dt, device=self.x.device)
                    self.inputs[dt] = (torch.empty(1, dim, dtype=dt, device=self.x.device), attn,
                                       attn.view(1, nh * hd), torch.empty(1, hidden, dtype=dt, device=self.x.device))
            if not a.attn_softcap:
                # (written straight into wo's input; softcapped scores stay on torch)
                L.attend = DecodeAttention.for_cache(L.k_cache, L.v_cache, nh // nkv, self.inputs[L.wo_dtype][1],
                                                     new=(self.kv_new[0], self.kv_new[1]))
        self._bind_native(net)

    def _bind_native(self, net) -> None:
        """The products that run on the native kernels, bound to the step's buffers, each told
        which product comes next (the output head after the last layer) so the pool warms it."""
        if torch.float32 not in self.inputs:          # (native products take float32: there are none)
            return
        u, _, attn_row, act = self.inputs[torch.float32]
        plain_residual = self.args.residual_scale == 1.0
        alpha = self.inv_rms.view(1)
        order: list[tuple] = []        # (layer, attribute, product, bound()'s arguments or None), as the step runs them
        for L, layer in zip(self.layers, net.layers):
            at, ff = layer.attn, layer.ffn
            forms = [("qkv_call", at.wqkv, dict(x=u, out=self.qkv, alpha=alpha, bias=L.qkv_bias)),
                     ("wo_call", at.wo, dict(x=attn_row, out=self.x, accumulate=True)
                      if at.wo.bias is None and L.attn_post_norm is None and plain_residual else None)]
            if L.moe is None:
                forms += [("w13_call", ff.w13, dict(x=u, out=self.h13, alpha=alpha, bias=L.w13_bias)),
                          ("w2_call", ff.w2, dict(x=act, out=self.x, accumulate=True)
                           if ff.w2.bias is None and L.ffn_post_norm is None and plain_residual else None)]
            order += [(L, attr, form.product, args) for attr, form, args in forms if isinstance(form, NativeLinear)]
        head = getattr(net.output, "product", None)
        for i, (L, attr, product, args) in enumerate(order):
            if args is not None:
                nxt = order[i + 1][2] if i + 1 < len(order) else head
                setattr(L, attr, product.bound(**args, next_product=nxt))

    def _normed(self, scaled_weight: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(x * norm weight in the next matmul's input dtype, what the matmul's result is then
        multiplied by: 1/rms)."""
        torch.dot(self.x_ext, self.x_ext, out=self.sum_sq).rsqrt_()
        if dtype == torch.float16:
            # Not normalized, x * w can pass float16's range (65504; a GPU without bf16 runs
            # dense float16): normalize first, as Transformer.forward does.
            return torch.mul(self.x * self.inv_rms, scaled_weight, out=self.inputs[dtype][0]), self.one
        return torch.mul(self.x, scaled_weight, out=self.inputs[dtype][0]), self.inv_rms

    def _add_normed(self, h: torch.Tensor, scaled_weight: torch.Tensor | None):
        """x += RMSNorm(h) (a post-norm, where the model has them), or x += h: with the weight
        scaled by sqrt(dim), h * w / sqrt(sum(h^2) + dim * eps) is RMSNorm(h) in five ops. Times
        the model's residual scale where it has one (granite)."""
        scale = self.args.residual_scale
        if scaled_weight is None:
            self.x.add_(h, alpha=scale) if scale != 1.0 else self.x.add_(h)
            return
        h = h.float()
        inv = torch.dot(h[0], h[0]).add_(self.post_eps).rsqrt_()
        if scale != 1.0:
            inv.mul_(scale)
        self.x.addcmul_(h, torch.mul(scaled_weight, inv))

    @torch.inference_mode()     # ~10% faster than no_grad here: no version counters or view tracking
    def step(self, token: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits [vocab] (float32) for the token after token (a [1] id tensor) at position pos;
        fills the cache at pos."""
        a = self.args
        nh, nkv, hd = a.n_heads, a.n_kv_heads, a.head_dim
        x, qkv, h13 = self.x, self.qkv, self.h13
        torch.mul(self.embed(token), a.embed_scale, out=x)
        grot, lrot = self.rope_global[pos], self.rope_local[pos]
        temp = temperature_at(a, pos)
        if self.whole_rope:
            gturn, lturn = self.turns[id(self.rope_global)], self.turns[id(self.rope_local)]
            gturn[:nh + nkv].copy_(grot)
            lturn[:nh + nkv].copy_(lrot)
        for L in self.layers:
            u, scale = self._normed(L.attn_norm, L.qkv_dtype)
            if L.qkv_call is not None:
                L.qkv_call()
            elif L.qkv_bias is None:
                torch.mul(L.qkv(u), scale, out=qkv)
            else:
                torch.addcmul(L.qkv_bias, L.qkv(u), scale, out=qkv)
            if L.qk_norm is not None:        # in place, per head: as RMSNorm with sqrt(hd) in the weight
                torch.bmm(self.qk_rows, self.qk_cols, out=self.qk_sum_sq).add_(self.qk_eps).rsqrt_()
                self.qk.mul_(self.qk_sum_sq.view(-1, 1)).mul_(L.qk_norm)
            # the cache slot of pos, and of the oldest position it attends to
            slot, lo = L.cache.decode_slots(pos) if L.window else (pos, 0)
            if self.whole_rope or not L.rope:
                if L.rope:
                    self.qkv_complex.mul_(lturn if L.window else gturn)
                q = self.q_grouped
                if L.attend is not None:
                    store = slot            # (the attention call stores them)
                else:
                    L.kv.select(3, slot).copy_(self.kv_new)
            else:
                store = None
                qk = rope_row(self.qk, lrot if L.window else grot, a.rope_dim)
                q = qk[:nh].view(1, nkv, nh // nkv, hd)
                L.k_cache.select(2, slot).copy_(qk[nh:])
                L.v_cache.select(2, slot).copy_(self.v)
            _, attn, attn_row, _ = self.inputs[L.wo_dtype]
            if L.attend is not None:
                L.attend(q, self.scale * temp, lo, slot + 1 - lo, store)       # (into attn)
            else:
                if temp != 1.0:
                    q = q * temp
                if self.q_attn is not None:
                    q = self.q_attn.copy_(q)
                keys, values = L.k_cache.narrow(2, lo, slot + 1 - lo), L.v_cache.narrow(2, lo, slot + 1 - lo)
                if a.attn_softcap:       # (q grouped [1, nkv, nh / nkv, hd]: no GQA expansion needed)
                    y = written_attention(q, keys, values, None, self.scale, a.attn_softcap)
                else:
                    y = F.scaled_dot_product_attention(q, keys, values, scale=self.scale)
                attn.copy_(y)
            if L.wo_call is not None:
                L.wo_call()
            else:
                self._add_normed(L.wo(attn_row), L.attn_post_norm)     # in place: x stays inside x_ext
            u, scale = self._normed(L.ffn_norm, L.w13_dtype)
            if L.moe is not None:
                self._add_normed(L.moe(u.mul_(scale)), L.ffn_post_norm)
                continue
            if L.w13_call is not None:
                L.w13_call()
            elif L.w13_bias is None:
                torch.mul(L.w13(u), scale, out=h13)
            else:
                torch.addcmul(L.w13_bias, L.w13(u), scale, out=h13)
            act = self.inputs[L.w2_dtype][3]
            if self.gelu:
                torch.mul(F.gelu(self.gate, approximate="tanh"), self.up, out=act)
            else:
                torch.mul(F.silu(self.gate, inplace=True), self.up, out=act)
            if L.w2_call is not None:
                L.w2_call()
            else:
                self._add_normed(L.w2(act), L.ffn_post_norm)
        torch.dot(self.x_ext, self.x_ext, out=self.sum_sq).rsqrt_()
        return final_logits(a, self.head(torch.mul(x, self.final_norm).mul_(self.inv_rms))[0].float())

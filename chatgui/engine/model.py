"""The Transformer: plain PyTorch, no I/O (weights are put in by loader.py).

One ModelArgs dataclass describes every supported architecture (archs.py lists them); the
differences are flags. forward(tokens, input_pos) -> logits, with a KV cache allocated once
(a sliding-window layer's holds only what its window can still reach: KVCache).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .archs import kv_source, layer_kv
from .attention_math import temperature as attn_temperature
from .attention_math import written_attention
from . import cores
from .decode import Decoder, final_logits
from .experts import DenseAndExperts, MoEFeedForward
from .deltanet import GatedDeltaNet
from .shortconv import ShortConv
from .rope import apply_rope


@dataclass
class ModelArgs:
    arch: str = "llama"
    dim: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    head_dim: int = 64
    hidden_dim: int = 1536
    vocab_size: int = 49152
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    rope_dim: int = 64
    # llama.cpp permutes llama's Q/K rows for interleaved ("GPT-J") RoPE; qwen and gemma files
    # keep the "NeoX" rotate-half layout, which the loader permutes into the interleaved one.
    rope_interleaved: bool = True
    train_context: int = 2048
    qkv_bias: bool = False
    qk_norm: bool = False
    tied_embeddings: bool = True
    # gemma3
    act: str = "silu"                     # "silu" or "gelu_tanh"
    embed_scale: float = 1.0
    post_norms: bool = False              # norm after attention and after the MLP
    attn_scale: float | None = None       # default 1/sqrt(head_dim)
    sliding_window: int = 0               # 0: full attention in every layer
    sliding_window_pattern: int = 0       # every Nth layer is global (gemma3: 6)
    rope_base_local: float = 10000.0      # RoPE base of sliding-window layers
    rope_scale: float = 1.0               # RoPE scaling factor of global layers (positions / factor)
    # RoPE scaling kind: "none", "linear" or "yarn" (llama.cpp's rope_yarn: a ramp between
    # interpolated and extrapolated frequencies, and rotations of magnitude mscale)
    rope_scaling: str = "none"
    yarn_orig_context: int = 0
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    yarn_log_mul: float = 0.0
    rope_attn_factor: float = 1.0         # the file's rope.scaling.attn_factor
    attn_temp_scale: float = 0.0          # llama 4 style query scaling by position (mistral3)
    qk_norm_full: bool = False            # q/k norms over all heads at once (olmo2), not per head
    pre_norms: bool = True                # olmo2 has none: only post-norms
    nope_every: int = 0                   # every Nth layer has no RoPE (smollm3)
    attn_softcap: float = 0.0             # scores -> c * tanh(scores / c) (gemma2); 0: none
    final_softcap: float = 0.0            # the same on the logits
    residual_scale: float = 1.0           # granite: each block's output times this before the add
    logit_scale: float = 1.0              # granite: logits divided by this
    n_experts: int = 0                    # Mixture-of-Experts MLP (qwen3moe): experts per layer,
    n_experts_used: int = 0               # of which each token uses this many,
    expert_hidden: int = 0                # each of this hidden size
    expert_act: str = "silu"              # "silu" or "swiglu_oai" (gpt-oss)
    swa_rope_scaled: bool = False         # sliding layers' RoPE has the global scaling too (gpt-oss)
    attn_sinks: bool = False              # a sink logit per head in each softmax (gpt-oss)
    shortconv_layers: tuple[int, ...] = ()  # layers that are short convolutions, not attention (lfm2)
    shortconv_kernel: int = 0
    deltanet_layers: tuple[int, ...] = ()   # Gated DeltaNet layers (qwen35; deltanet.py)
    full_attention_interval: int = 4
    ssm_conv_kernel: int = 0
    ssm_state: int = 0                    # DeltaNet head size (keys and values)
    ssm_k_heads: int = 0
    ssm_v_heads: int = 0
    ssm_inner: int = 0                    # value heads x head size
    attn_output_gate: bool = False        # attention output times sigmoid(a gate from attn_q) (qwen35)
    shared_expert_hidden: int = 0         # a gated shared expert beside the routed ones (qwen35moe)
    # Per-layer attention shapes (gemma4: archs.apply_layer_layout): the sliding layers listed,
    # KV heads per layer, the sliding layers' head size and rotary dims, the first layer that
    # attends to an earlier one's keys and values (archs.kv_source); 0 / (): as the fields above.
    layer_layout: bool = False
    swa_layers: tuple[int, ...] = ()
    kv_heads: tuple[int, ...] = ()
    head_dim_swa: int = 0
    rope_dim_swa: int = 0
    kv_shared_from: int = 0
    v_norm: bool = False                  # V RMS-normed, no weight (gemma4)
    per_layer_dim: int = 0                # per-layer embeddings' width (gemma4)
    layer_output_scale: bool = False      # each layer's output times a scalar (gemma4)
    hidden_per_layer: tuple[int, ...] = ()  # MLP width per layer (gemma4; (): hidden_dim)
    k_eq_v_layers: tuple[int, ...] = ()   # layers without attn_v: V is K before its norm (gemma4)
    dense_and_experts: bool = False       # experts beside each layer's dense MLP (gemma4 26B-A4B)

    def is_sliding(self, layer: int) -> bool:
        if self.layer_layout:
            return bool(self.sliding_window) and layer in self.swa_layers
        if not self.sliding_window or not self.sliding_window_pattern:
            return False
        return (layer + 1) % self.sliding_window_pattern != 0

    def has_rope(self, layer: int) -> bool:
        return not self.nope_every or (layer + 1) % self.nope_every != 0


# A sliding-window layer's cache holds only what its window can still reach, as llama.cpp's SWA
# cache does, plus room to step back: Gemma 3 4B at a 4k context keeps 2,560 of 4,096 positions
# in 29 of its 34 layers (-365 MB in float32), at 32k one in thirteen. Stepping back further than
# SWA_ROLLBACK (an edit far up a long chat) means computing the chat again from its start
# (Transformer.resumable); a reply (512 tokens by default) can always be regenerated.
SWA_ROLLBACK = 1024      # positions before the window kept on every slide
SWA_STRIDE = 512         # new positions between two slides: also the longest forward chunk


def first_seen(pos: int, window: int) -> int:
    """The oldest position the query at pos attends to (window 0: full attention)."""
    return max(0, pos - window + 1) if window else 0


def cache_slots(args: ModelArgs, sliding: bool, max_seq: int) -> int:
    """Positions one layer's cache holds."""
    if not sliding or not args.sliding_window:
        return max_seq
    return min(max_seq, args.sliding_window + SWA_ROLLBACK + SWA_STRIDE)


class KVCache(nn.Module):
    def __init__(self, max_seq: int, n_kv_heads: int, head_dim: int, dtype, device, window: int = 0,
                 slots: int | None = None, rows: int = 1):
        """window: a sliding-window layer's window (0: full attention). slots: the positions held
        (max_seq unless it slides): position p sits in slot p - base, and when a new position does
        not fit, the cache slides (make_room). rows: sequences decoded together (batch.py)."""
        super().__init__()
        # Keys and values in one tensor, so that the decode step writes a position's K and V
        # with one copy. Not zeroed: attention only reads positions already written, and the
        # memory of positions never reached is never touched (a 4k context is ~200 MB here).
        self.slots = slots or max_seq
        self.window = window
        self.base = 0            # the position in slot 0
        shape = (2, rows, n_kv_heads, self.slots, head_dim)
        self.register_buffer("kv", torch.empty(shape, dtype=dtype, device=device), persistent=False)

    @property
    def k(self) -> torch.Tensor:        # [1, n_kv_heads, slots, head_dim]
        return self.kv[0]

    @property
    def v(self) -> torch.Tensor:
        return self.kv[1]

    def first_seen(self, pos: int) -> int:
        return first_seen(pos, self.window)

    def resumable(self, start: int) -> bool:
        """Whether the positions before start that a query at start sees are still held."""
        return start == 0 or self.first_seen(start) >= self.base

    def make_room(self, start: int, end: int) -> None:
        """Before positions [start, end) are written: where they do not fit, slide, dropping the
        positions no query from start on sees except the SWA_ROLLBACK before them."""
        if start == 0:
            self.base = 0
        if not self.resumable(start):
            raise ValueError(f"position {start} cannot be resumed: the sliding-window cache has moved on "
                             f"(it holds positions from {self.base})")
        if end - self.base <= self.slots:
            return
        base = max(self.base, self.first_seen(start) - SWA_ROLLBACK)
        if end - base > self.slots:
            raise ValueError(f"{end - start} positions at once do not fit a sliding-window cache of "
                             f"{self.slots} (at most {SWA_STRIDE})")
        kept = self.kv[:, :, :, base - self.base:start - self.base].clone()
        self.kv[:, :, :, :kept.shape[3]] = kept
        self.base = base

    def update(self, start: int, k: torch.Tensor, v: torch.Tensor):
        """Write k, v at positions [start, start+T) and return the cache's keys and values from
        first_seen(start) to their end."""
        end = start + k.shape[2]
        self.make_room(start, end)
        s, e = start - self.base, end - self.base
        self.k[:, :, s:e] = k
        self.v[:, :, s:e] = v
        lo = self.first_seen(start) - self.base
        return self.k[:, :, lo:e], self.v[:, :, lo:e]

    def read(self, start: int, end: int):
        """The keys and values a query at start sees up to end, written by the layer that owns
        this cache (a layer attending to another's: gemma4's shared KV)."""
        lo, e = self.first_seen(start) - self.base, end - self.base
        return self.k[:, :, lo:e], self.v[:, :, lo:e]

    def decode_slots(self, pos: int) -> tuple[int, int]:
        """For one new position pos: (its slot, the slot of first_seen(pos)), room made."""
        self.make_room(pos, pos + 1)
        return pos - self.base, self.first_seen(pos) - self.base


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.dim = (dim,)
        self.weight = nn.Parameter(torch.ones(dim), requires_grad=False)

    def forward(self, x):
        # One fused op: the same result as x * rsqrt(mean(x^2) + eps) * w written out, in about a
        # third less time (six norms a layer). Figures: benchmarks/results/2026-12-07-figures-from-docstrings.md.
        return F.rms_norm(x.float(), self.dim, self.weight, self.eps)


def rope_table(args: ModelArgs, base: float, max_seq: int, device, freq_factors=None, scale: float = 1.0,
               scaling: str = "none"):
    """Rotations mscale * e^(i * pos * theta_j), [max_seq, rope_dim/2] complex64, as llama.cpp's
    rope_yarn makes them: scale divides the positions ("linear"), or with "yarn" only the low
    frequencies are interpolated (a ramp between pairs low..high) and the rotations grow."""
    half, n = args.rope_dim // 2, args.rope_dim
    f64 = dict(dtype=torch.float64, device=device)
    inv = 1.0 / (base ** (torch.arange(0, half, **f64) * 2 / n))
    if freq_factors is not None:
        inv = inv / freq_factors.to(**f64)
    pos = torch.arange(max_seq, **f64)
    mscale = args.rope_attn_factor
    if scaling == "yarn" and scale > 1.0:
        def corr_dim(rotations):      # the pair whose wavelength fits `rotations` times in the context
            return n * math.log(args.yarn_orig_context / (rotations * 2 * math.pi)) / (2 * math.log(base))
        low = max(0.0, math.floor(corr_dim(args.yarn_beta_fast)))
        high = min(n - 1.0, math.ceil(corr_dim(args.yarn_beta_slow)))
        ramp = 1 - ((torch.arange(half, **f64) - low) / max(0.001, high - low)).clamp(0, 1)
        inv = inv / scale * (1 - ramp) + inv * ramp
        def get_mscale(m):
            return 0.1 * m * math.log(scale) + 1.0
        mscale *= get_mscale(1.0) / get_mscale(args.yarn_log_mul) if args.yarn_log_mul else get_mscale(1.0)
    elif scaling != "none":
        pos = pos / scale
    return torch.polar(torch.full((max_seq, half), mscale, **f64), torch.outer(pos, inv)).to(torch.complex64)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, layer: int):
        super().__init__()
        self.args = args
        self.n_heads = args.n_heads
        self.n_kv, self.hd = layer_kv(args, layer)
        self.sliding = args.is_sliding(layer)
        self.rope = args.has_rope(layer)
        self.rope_dim = args.rope_dim_swa if args.layer_layout and self.sliding else args.rope_dim
        self.shares_kv = kv_source(args, layer) != layer      # (wqkv then gives q only)
        self.k_is_v = layer in args.k_eq_v_layers             # (wqkv gives q and k)
        # (the loader reorders K's dims for RoPE: V takes them back in the file's order)
        self.register_buffer("v_order", None)
        # Projections are set by the loader (dense or packed, see qlinear.py). QKV is fused:
        # one matmul instead of three.
        self.wqkv: nn.Module | None = None
        self.wo: nn.Module | None = None
        if args.qk_norm:      # per head ([head_dim] weights), or over all heads (qk_norm_full)
            self.q_norm = RMSNorm(self.hd * (self.n_heads if args.qk_norm_full else 1), args.norm_eps)
            self.k_norm = RMSNorm(self.hd * (self.n_kv if args.qk_norm_full else 1), args.norm_eps)
        self.scale = args.attn_scale if args.attn_scale is not None else 1.0 / math.sqrt(self.hd)
        self.v_norm = args.v_norm
        self.register_buffer("sinks", None)          # [n_heads] sink logits (gpt-oss), set by the loader
        self.cache: KVCache | None = None

    def forward(self, x, start: int, rot, mask, temperature=None):
        B, T, _ = x.shape
        nh, nkv, hd = self.n_heads, self.n_kv, self.hd
        qkv = self.wqkv(x)
        gate = None
        if self.args.attn_output_gate:      # (the loader put the gate rows after all q rows)
            gate = qkv[..., nh * hd:2 * nh * hd]
            qkv = torch.cat([qkv[..., :nh * hd], qkv[..., 2 * nh * hd:]], dim=-1)
        if self.shares_kv:
            return self._forward_shared(qkv, start, rot, mask, temperature)
        if self.k_is_v:
            k = qkv[..., nh * hd:]
            v = k if self.v_order is None else k.view(B, T, nkv, hd)[..., self.v_order].reshape(B, T, nkv * hd)
            qkv = torch.cat([qkv, v], dim=-1)
        qkv = qkv.view(B, T, nh + 2 * nkv, hd)
        qk, v = qkv.split([nh + nkv, nkv], dim=2)
        if self.v_norm:
            v = F.rms_norm(v.float(), (hd,), None, self.args.norm_eps)
        if self.args.qk_norm_full:
            q, k = qk.float().split([nh, nkv], dim=2)
            qk = torch.cat([self.q_norm(q.reshape(B, T, nh * hd)).view(B, T, nh, hd),
                            self.k_norm(k.reshape(B, T, nkv * hd)).view(B, T, nkv, hd)], dim=2)
        elif self.args.qk_norm:
            qk = self.qk_normed(qk)
        qk = apply_rope(qk, rot, self.rope_dim) if self.rope else qk.float()   # q and k rotated together
        qk = qk.transpose(1, 2)
        q, k = qk.split([nh, nkv], dim=1)
        if temperature is not None:
            q = q * temperature
        k, v = self.cache.update(start, k, v.transpose(1, 2))
        return self._attend(q, k, v, mask, gate)

    def _forward_shared(self, q, start, rot, mask, temperature):
        """Queries only, against the keys and values the source layer wrote at these positions."""
        B, T, _ = q.shape
        q = self.q_norm(q.view(B, T, self.n_heads, self.hd))
        q = (apply_rope(q, rot, self.rope_dim) if self.rope else q).transpose(1, 2)
        if temperature is not None:
            q = q * temperature
        k, v = self.cache.read(start, start + T)
        return self._attend(q, k, v, mask, None)

    def _attend(self, q, k, v, mask, gate):
        B, nh, T, hd = q.shape
        nkv = k.shape[1]
        if self.args.attn_softcap or self.sinks is not None:
            sinks = None if self.sinks is None else self.sinks.view(nh, 1, 1)
            y = written_attention(q, k, v, mask, self.scale, self.args.attn_softcap, sinks).to(k.dtype)
        else:
            y = F.scaled_dot_product_attention(q.to(k.dtype), k, v, attn_mask=mask, scale=self.scale,
                                               enable_gqa=nkv != nh)
        y = y.transpose(1, 2).reshape(B, T, nh * hd)
        if gate is not None:
            y = y * torch.sigmoid(gate.float()).to(y.dtype)
        return self.wo(y)

    def qk_normed(self, qk: torch.Tensor) -> torch.Tensor:
        """q_norm on the query heads and k_norm on the key heads of qk [B, T, nh + nkv, hd], in
        one norm over all heads and one multiply (not a split, two norms and a cat: ~50 us a
        layer less on a short prompt). The same numbers: rms_norm multiplies by the weight last."""
        weight = torch.cat([self.q_norm.weight.expand(self.n_heads, self.hd),
                            self.k_norm.weight.expand(self.n_kv, self.hd)])
        return F.rms_norm(qk.float(), (self.hd,), None, self.args.norm_eps).mul_(weight)


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs, hidden: int | None = None):
        super().__init__()
        self.hidden = hidden or args.hidden_dim
        self.w13: nn.Module | None = None     # fused gate and up projections (set by the loader)
        self.w2: nn.Module | None = None
        self.gelu = args.act == "gelu_tanh"

    def forward(self, x):
        # The activation in place on w13's fresh result (one [T, hidden] tensor fewer); the
        # product is a new, contiguous one, as the matmul kernels want.
        gate, up = self.w13(x).split(self.hidden, dim=-1)
        if not self.gelu:
            gate = F.silu(gate, inplace=True)
        elif gate.dtype == torch.float32 and gate.device.type == "cpu":
            gate = gelu_tanh_(gate)
        else:       # (in bfloat16 its six roundings would cost accuracy; on a GPU, one fused op)
            gate = F.gelu(gate, approximate="tanh")
        return self.w2(gate * up)


GELU_K = 2 * math.sqrt(2 / math.pi)


def gelu_tanh_(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation, into x (float32): 0.5 x (1 + tanh(z)) = x sigmoid(2z), z =
    sqrt(2/pi) (x + 0.044715 x^3). torch's gelu(approximate="tanh") is several times slower on
    this CPU build (tanh is slow; figures: benchmarks/results/2026-12-07-figures-from-docstrings.md);
    in float32 the results differ by float rounding (~1e-6). On one row (decode.py) torch's op is the faster one
    and stays."""
    z = x * x
    z.mul_(0.044715 * GELU_K).add_(GELU_K).mul_(x)
    return x.mul_(z.sigmoid_())


class Block(nn.Module):
    def __init__(self, args: ModelArgs, layer: int):
        super().__init__()
        self.index = layer
        # (olmo2 has no norms before attention and the MLP, only after them)
        self.attn_norm = RMSNorm(args.dim, args.norm_eps) if args.pre_norms else nn.Identity()
        # (the layer's token mixer: attention, or LFM2's short convolution in its place)
        if layer in args.deltanet_layers:
            self.attn = GatedDeltaNet(args)
        else:
            self.attn = ShortConv(args) if layer in args.shortconv_layers else Attention(args, layer)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps) if args.pre_norms else nn.Identity()
        dense_hidden = args.hidden_per_layer[layer] if args.hidden_per_layer else None
        # (gemma4's MoE layers: experts beside the dense MLP, reading the un-normed residual too)
        self.dense_and_experts = bool(args.n_experts and args.dense_and_experts)
        if self.dense_and_experts:
            self.ffn = DenseAndExperts(args, FeedForward(args, dense_hidden), lambda: RMSNorm(args.dim, args.norm_eps))
        elif args.n_experts:
            self.ffn = MoEFeedForward(args)
        else:
            self.ffn = FeedForward(args, dense_hidden)
        if args.n_experts and args.shared_expert_hidden:
            self.ffn.shared = FeedForward(args, args.shared_expert_hidden)
        self.post_norms = args.post_norms
        self.residual_scale = args.residual_scale
        if args.post_norms:
            self.attn_post_norm = RMSNorm(args.dim, args.norm_eps)
            self.ffn_post_norm = RMSNorm(args.dim, args.norm_eps)
        # gemma4: the layer's slice of the per-layer embeddings, gated by the layer's output
        # (inp_gate, GELU), projected back (proj), normed (post_norm) and added; then the scale
        self.pl_gate: nn.Module | None = None        # (set by the loader)
        self.pl_proj: nn.Module | None = None
        if args.per_layer_dim:
            self.pl_norm = RMSNorm(args.dim, args.norm_eps)
        self.register_buffer("out_scale", None)     # [1]

    def forward(self, x, start, rot, mask, temperature=None, per_layer=None):
        h = self.attn(self.attn_norm(x), start, rot, mask, temperature)
        if self.post_norms:
            h = self.attn_post_norm(h)
        x = x + (h if self.residual_scale == 1.0 else h * self.residual_scale)
        h = self.ffn(self.ffn_norm(x), x) if self.dense_and_experts else self.ffn(self.ffn_norm(x))
        if self.post_norms:
            h = self.ffn_post_norm(h)
        x = x + (h if self.residual_scale == 1.0 else h * self.residual_scale)
        if per_layer is not None:
            g = F.gelu(self.pl_gate(x).float(), approximate="tanh") * per_layer
            x = x + self.pl_norm(self.pl_proj(g))
        return x if self.out_scale is None else x * self.out_scale


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.layers = nn.ModuleList(Block(args, i) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        # Set by the loader: the embedding table (.rows(ids)) and the output head (called on
        # hidden states); the same module when the file ties them.
        self.tok_embeddings: nn.Module | None = None
        self.output: nn.Module | None = None
        # gemma4's per-layer embeddings: a table of n_layers x per_layer_dim per token, and a
        # projection of the embeddings to the same, normed (set by the loader)
        self.per_layer_embd: nn.Module | None = None
        self.per_layer_proj: nn.Module | None = None
        if args.per_layer_dim:
            self.per_layer_norm = RMSNorm(args.per_layer_dim, args.norm_eps)
        self.max_seq = 0
        self._decoder: Decoder | None = None     # the single-token fast path, built on first use
        self._own_cores: bool | None = None      # cores.kernels_own_cores, found on first use
        self._own_cache: KVCache | None = None    # layer 0's cache as setup_cache made it
        # Futures of the packing after load (loader.py): `pending` ends when every weight has its
        # fast form; forward waits only for `pending_required` (forms with no interim kernel).
        self.pending = None
        self.pending_required = None
        self.requires_grad_(False)

    def finish_loading(self):
        """Wait for weights still being packed in the background (the layers', and the output
        head's ranker); from then on the decode step uses their packed kernels."""
        head_finish = getattr(self.output, "finish_loading", None)
        if head_finish is not None:
            head_finish()
        self._finish_layers()

    def _finish_layers(self, wait: bool = True):
        """Wait for the forms forward needs; for the rest too (wait), or take them if done."""
        if self.pending_required is not None:
            self.pending_required.result()
            self.pending_required = None
        if self.pending is not None and (wait or self.pending.done()):
            self.pending.result()
            self.pending = None
            self._decoder = None        # rebuilt with the packed kernels
            self._own_cores = None

    def setup_cache(self, max_seq: int, dtype=torch.float32, freq_factors=None):
        """dtype: the KV cache's (loader.kv_cache_dtype chooses it); queries are cast to it."""
        device = self.norm.weight.device
        self.max_seq = max_seq
        self._decoder = None
        a = self.args
        for layer in self.layers:
            sliding = layer.attn.sliding
            if isinstance(layer.attn, GatedDeltaNet):
                layer.attn.cache = layer.attn.new_state()
                continue
            if isinstance(layer.attn, ShortConv):      # (its state kept in float32, as llama.cpp's)
                layer.attn.cache = KVCache(max_seq, 1, a.dim // 2, torch.float32, device)
                continue
            if layer.attn.shares_kv:                   # (the source is an earlier layer)
                layer.attn.cache = self.layers[kv_source(a, layer.index)].attn.cache
                continue
            layer.attn.cache = KVCache(max_seq, layer.attn.n_kv, layer.attn.hd, dtype, device,
                                       a.sliding_window if sliding else 0, cache_slots(a, sliding, max_seq))
        self._own_cache = self.layers[0].attn.cache if self.layers else None
        a = self.args
        self.rope_global = rope_table(a, a.rope_base, max_seq, device, freq_factors, a.rope_scale, a.rope_scaling)
        # (sliding layers: the local base, unscaled, as llama.cpp's gemma2/3 and olmo2 graphs)
        self.rope_local = self.rope_global
        if a.sliding_window and a.swa_rope_scaled:
            self.rope_local = rope_table(a, a.rope_base_local, max_seq, device, freq_factors, a.rope_scale,
                                         a.rope_scaling)
        elif a.sliding_window:
            local = replace(a, rope_dim=a.rope_dim_swa) if a.layer_layout else a
            self.rope_local = rope_table(local, a.rope_base_local, max_seq, device)

    def resumable(self, start: int) -> bool:
        """Whether a forward pass may start at position start with what the cache holds (after a
        sliding-window cache has slid, not far before its end: KVCache.make_room)."""
        return all(layer.attn.cache.resumable(start) for layer in self.layers)

    def _mask(self, start: int, T: int, window: int, device):
        """Which keys each of T queries from start sees: keys from the cache's first_seen(start)
        (0 in full attention) to start + T."""
        if T == 1:
            return None    # a single new token attends to every key the cache gives it
        lo = first_seen(start, window)
        q_pos = torch.arange(start, start + T, device=device)[:, None]
        k_pos = torch.arange(lo, start + T, device=device)[None, :]
        allowed = k_pos <= q_pos
        if window:
            allowed &= k_pos > q_pos - window
        return allowed

    def _per_layer_inputs(self, tokens: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """gemma4: [B, T, n_layers, per_layer_dim], as llama.cpp's project_per_layer_inputs."""
        B, T = tokens.shape
        n, pl = self.args.n_layers, self.args.per_layer_dim
        table = self.per_layer_embd.rows(tokens).float().view(B, T, n, pl) * math.sqrt(pl)
        proj = self.per_layer_proj(x).float().view(B, T, n, pl) / math.sqrt(self.args.dim)
        return (self.per_layer_norm(proj) + table) / math.sqrt(2.0)

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor | int, last_only: bool = False,
                logits: bool = True):
        """tokens [B, T] at positions input_pos (a start int, or a [T] tensor of consecutive
        positions) -> logits [B, T, vocab] (or [B, 1, vocab] with last_only). logits=False: the
        cache is filled and the output head skipped (a prompt's chunks before its last: the
        head of a 262k-token vocabulary costs as much as a few layers); None is returned, except
        by the one-token decode step, which always gives its logits."""
        with cores.torch_on_one_thread(self.kernels_own_cores):
            return self._forward(tokens, input_pos, last_only, logits)

    @property
    def kernels_own_cores(self) -> bool:
        """Whether every layer product runs on the native kernels (cores.py)."""
        if self._own_cores is None:
            self._own_cores = cores.kernels_own_cores(self)
        return self._own_cores

    @torch.no_grad()
    def _forward(self, tokens: torch.Tensor, input_pos: torch.Tensor | int, last_only: bool, logits: bool):
        start = int(input_pos) if isinstance(input_pos, int) else int(input_pos[0])
        B, T = tokens.shape
        if self.pending_required is not None or (self.pending is not None and self.pending.done()):
            self._finish_layers(wait=False)     # (nor the head's ranker, packed apart)
        if start + T > self.max_seq:
            raise ValueError(f"positions {start}..{start + T} exceed the cache ({self.max_seq})")
        if self.args.sliding_window and T > SWA_STRIDE:
            # a sliding-window cache takes at most SWA_STRIDE new positions at a time
            parts = [self(tokens[:, i:i + SWA_STRIDE], start + i, last_only,
                          logits and (not last_only or i + SWA_STRIDE >= T)) for i in range(0, T, SWA_STRIDE)]
            if not logits:
                return None
            return parts[-1] if last_only else torch.cat(parts, dim=1)
        # The fast path works on the model's own cache; a cache put in its place (batch.py's,
        # even with one row) goes through the general path, as do the layer kinds it lacks.
        if B == 1 and T == 1 and Decoder.handles(self.args) and (
                not self.layers or self.layers[0].attn.cache is self._own_cache):
            if self._decoder is None:
                self._decoder = Decoder(self)
            return self._decoder.step(tokens[0], start).view(1, 1, -1)
        x = self.tok_embeddings.rows(tokens)
        if self.args.embed_scale != 1.0:
            x = x * self.args.embed_scale
        grot, lrot = self.rope_global[start:start + T], self.rope_local[start:start + T]
        full_mask = self._mask(start, T, 0, x.device)
        win_mask = self._mask(start, T, self.args.sliding_window, x.device) if self.args.sliding_window else None
        temperature = attn_temperature(self.args, start, T, x.device)
        per_layer = self._per_layer_inputs(tokens, x) if self.args.per_layer_dim else None
        for layer in self.layers:
            extra = per_layer[:, :, layer.index] if per_layer is not None else None
            if layer.attn.sliding:
                x = layer(x, start, lrot, win_mask, temperature, extra)
            else:
                x = layer(x, start, grot, full_mask, temperature, extra)
        if not logits:
            return None
        if last_only:
            x = x[:, -1:]
        return final_logits(self.args, self.output(self.norm(x)).float())


"""Gated DeltaNet, the linear-attention layers of Qwen3.5 / 3.6 (qwen35, qwen35moe), in the place
of attention in three layers of four.

As llama.cpp's qwen35.cpp and delta-net-base.cpp: one projection gives q, k, v (convolved
together: a causal depthwise convolution over the last `kernel` positions, then SiLU), the
output gate z, beta and alpha. q and k are L2-normalised (k heads tiled over the v heads, as
ggml repeats them) and q scaled by 1/sqrt(d). Per token and value head, with the decay
g = softplus(alpha + dt_bias) * A (A < 0) and beta = sigmoid(beta):
    S = exp(g) S;  S += k (beta (v - S^T k))^T;  o = S^T q        (S: [d_k, d_v])
then o is RMS-normed per head, times silu(z), and projected out.

Unlike attention, the layer keeps no per-position cache: its whole past is the state S and the
last kernel-1 convolution inputs (RecurrentState). That state exists only for one position, so
going back (Regenerate, an edited message, a new turn whose prompt differs from the cached one
before its end) needs the state as it was there: RecurrentState keeps snapshots at the ends of
the multi-token passes it computed (prefill chunks, a prompt but its last token), and the chat
model resumes at the latest of those its next sequence would compute the same way
(ChatModel._prefill), else at position 0; the tokens after it are computed again.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# Snapshots kept per layer (each is the layer's state: for Qwen3.5-0.8B, 18 layers x 1 MB). Taken
# at the end of every multi-token forward pass: the chat model resumes only at the end of a pass
# (a prefill chunk's, or a prompt's but its last token: ChatModel._prefill), so 8 cover the last
# 1,024 positions of prefill chunks.
MAX_SNAPSHOTS = 8
# Prompts of CHUNKED_FROM positions or more go by chunks of CHUNK positions (_chunked).
CHUNK, CHUNKED_FROM = 64, 16


class RecurrentState:
    """A DeltaNet layer's state after `pos` positions, for `rows` sequences decoded together."""

    def __init__(self, rows: int, channels: int, kernel: int, heads: int, d_k: int, d_v: int, device):
        f32 = dict(dtype=torch.float32, device=device)
        self.conv = torch.zeros(rows, kernel - 1, channels, **f32)   # the last kernel-1 conv inputs
        self.ssm = torch.zeros(rows, heads, d_k, d_v, **f32)
        self.pos = 0
        self.snapshots: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def nbytes(self) -> int:
        return (self.conv.numel() + self.ssm.numel()) * 4

    def resume_points(self) -> set[int]:
        """The positions a forward pass may start at."""
        return {0, self.pos, *self.snapshots}

    def resumable(self, start: int) -> bool:
        return start in self.resume_points()

    def seek(self, start: int) -> None:
        """Put the state at position start (0, where it is, or a snapshot); snapshots past start
        belong to the tokens computed after it, which a pass from start replaces."""
        if start != self.pos:
            if start == 0:
                self.conv.zero_()
                self.ssm.zero_()
            elif start in self.snapshots:
                conv, ssm = self.snapshots[start]
                self.conv.copy_(conv)
                self.ssm.copy_(ssm)
            else:
                raise ValueError(f"a recurrent layer cannot resume at position {start}: its state is at {self.pos} "
                                 f"and it keeps snapshots at {sorted(self.snapshots)}")
            self.pos = start
        for p in [p for p in self.snapshots if p > start]:
            del self.snapshots[p]

    def snapshot(self, pos: int, conv: torch.Tensor, ssm: torch.Tensor) -> None:
        if self.conv.shape[0] != 1:       # (a batch's rows are not rolled back: batch.py)
            return
        self.snapshots.pop(pos, None)
        self.snapshots[pos] = (conv.clone(), ssm.clone())
        while len(self.snapshots) > MAX_SNAPSHOTS:
            self.snapshots.popitem(last=False)

    def with_rows(self, n: int) -> "RecurrentState":
        """A state for n sequences, each starting from this one's (batch.py)."""
        _, k1, ch = self.conv.shape
        _, h, dk, dv = self.ssm.shape
        out = RecurrentState(n, ch, k1 + 1, h, dk, dv, self.conv.device)
        out.conv.copy_(self.conv.expand(n, -1, -1))
        out.ssm.copy_(self.ssm.expand(n, -1, -1, -1))
        out.pos = self.pos
        return out

    def keep_rows(self, index: torch.Tensor) -> None:
        self.conv = self.conv.index_select(0, index)
        self.ssm = self.ssm.index_select(0, index)


class GatedDeltaNet(nn.Module):
    sliding = False           # (read where attention layers are: Transformer.forward, setup_cache)
    rope = False

    def __init__(self, args):
        super().__init__()
        self.eps = args.norm_eps
        self.kernel = args.ssm_conv_kernel
        self.hk, self.hv, self.dk = args.ssm_k_heads, args.ssm_v_heads, args.ssm_state
        self.dv = args.ssm_inner // args.ssm_v_heads
        self.key_dim, self.value_dim = self.hk * self.dk, args.ssm_inner
        self.channels = 2 * self.key_dim + self.value_dim
        # Set by the loader: q, k, v, z, beta and alpha in one projection; the output projection.
        self.in_proj: nn.Module | None = None
        self.out_proj: nn.Module | None = None
        self.register_buffer("conv", torch.zeros(self.channels, self.kernel))     # [channels, kernel]
        self.register_buffer("dt_bias", torch.zeros(self.hv))
        self.register_buffer("a", torch.zeros(self.hv))                           # -exp(A_log)
        self.register_buffer("norm", torch.ones(self.dv))
        self.cache: RecurrentState | None = None
        self._taps: tuple | None = None        # (_conv_taps's)

    def new_state(self, rows: int = 1) -> RecurrentState:
        return RecurrentState(rows, self.channels, self.kernel, self.hv, self.dk, self.dv, self.conv.device)

    def forward(self, x, start: int, rot=None, mask=None, temperature=None):
        B, T, _ = x.shape
        state = self.cache
        state.seek(start)
        if T == 1:
            return self._decode(x, state)
        qkv, z, beta, alpha = self.in_proj(x).float().split(
            [self.channels, self.value_dim, self.hv, self.hv], dim=-1)
        beta = torch.sigmoid(beta)
        g = F.softplus(alpha + self.dt_bias) * self.a                  # the log of the decay, [B, T, hv]
        seq = torch.cat([state.conv, qkv], dim=1)                              # [B, kernel-1+T, channels]
        mixed = F.silu((seq.unfold(1, self.kernel, 1) * self.conv).sum(-1))   # [B, T, channels]
        q, k, v = mixed.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        reps = self.hv // self.hk
        q = _l2_normed(q.reshape(B, T, self.hk, self.dk), self.eps).repeat(1, 1, reps, 1) / math.sqrt(self.dk)
        k = _l2_normed(k.reshape(B, T, self.hk, self.dk), self.eps).repeat(1, 1, reps, 1)
        v = v.reshape(B, T, self.hv, self.dv)
        # all but the last position (chunked when there are enough), then the last one
        run = _chunked if T - 1 >= CHUNKED_FROM else _recurrent
        head, S = run(q[:, :-1], k[:, :-1], v[:, :-1], g[:, :-1], beta[:, :-1], state.ssm)
        last, state.ssm = _recurrent(q[:, -1:], k[:, -1:], v[:, -1:], g[:, -1:], beta[:, -1:], S)
        out = torch.cat([head, last], dim=1)
        state.conv = seq[:, T:].clone()
        state.pos = start + T
        state.snapshot(state.pos, state.conv, state.ssm)
        y = F.rms_norm(out, (self.dv,), self.norm, self.eps) * F.silu(z.view(B, T, self.hv, self.dv))
        return self.out_proj(y.reshape(B, T, self.value_dim))

    def _conv_taps(self) -> torch.Tensor:
        """The convolution's weights as [kernel, channels], contiguous (a multiply by the strided
        transpose took 1.7x as long), made again whenever the weights change (their version)."""
        version = (self.conv._version, self.conv.data_ptr())
        if self._taps is None or self._taps[0] != version:
            self._taps = (version, self.conv.T.contiguous())
        return self._taps[1]

    def _decode(self, x, state: RecurrentState):
        """forward for one position (decode): the same layer with fewer, larger ops (no unfold,
        no split of a position loop, the state updated in place by _step)."""
        B = x.shape[0]
        qkv, z, beta, alpha = self.in_proj(x).float().view(B, -1).split(
            [self.channels, self.value_dim, self.hv, self.hv], dim=-1)
        window = torch.cat([state.conv, qkv.unsqueeze(1)], dim=1)               # [B, kernel, channels]
        mixed = F.silu((window * self._conv_taps()).sum(1))     # (an einsum: three times the time here)
        state.conv = window[:, 1:]
        q, k, v = mixed.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        qk = _l2_normed(torch.cat([q, k], dim=-1).view(B, 2, self.hk, self.dk), self.eps)
        qk[:, 0].mul_(1 / math.sqrt(self.dk))
        if self.hv != self.hk:
            qk = qk.repeat(1, 1, self.hv // self.hk, 1)
        q, k = qk.unbind(1)
        g = F.softplus(alpha + self.dt_bias) * self.a
        out = _step(q, k, v.view(B, self.hv, self.dv), g, torch.sigmoid(beta), state.ssm)
        state.pos += 1
        y = F.rms_norm(out, (self.dv,), self.norm, self.eps) * F.silu(z.view(B, self.hv, self.dv))
        return self.out_proj(y.view(B, 1, self.value_dim))


def _recurrent(q, k, v, g, beta, S):
    """The gated delta rule one position at a time: q, k [B, T, H, dk] (q scaled), v [B, T, H, dv],
    g (log decay) and beta [B, T, H], state S [B, H, dk, dv] -> (out [B, T, H, dv], new state).
    On [B * H, ...] matrices: a multiply broadcast over S's last two dims ran ~1,000x slower on
    two busy threads here (20 ms against 0.02 ms for Qwen3.5-0.8B's 16 x 128 x 128)."""
    B, T, H, dk = k.shape
    dv = v.shape[-1]
    BH = B * H
    S = S.reshape(BH, dk * dv)
    decay, beta = g.exp().transpose(0, 1).reshape(T, BH, 1), beta.transpose(0, 1).reshape(T, BH, 1, 1)
    q, k, v = (t.transpose(0, 1).reshape(T, BH, 1, -1) for t in (q, k, v))
    out = torch.empty(T, BH, 1, dv, device=q.device)
    for t in range(T):
        S = (S * decay[t]).view(BH, dk, dv)
        delta = (v[t] - torch.bmm(k[t], S)) * beta[t]                     # [BH, 1, dv]
        S = S + k[t].transpose(1, 2) * delta
        out[t] = torch.bmm(q[t], S)
        S = S.view(BH, dk * dv)
    return out.view(T, B, H, dv).transpose(0, 1), S.view(B, H, dk, dv)


def _step(q, k, v, g, beta, S):
    """_recurrent for one position, S [B, H, dk, dv] updated in place: q, k [B, H, dk] (q scaled),
    v [B, H, dv], g and beta [B, H] -> out [B, H, dv]. The same rule rearranged so that the state
    is read once and written once: S^T k and S^T q of the old state in one product, then
        delta = beta (v - e S^T k),  out = e S^T q + (k . q) delta,  S = e S + k delta^T
    (e = exp(g)). Float rounding differs from _recurrent's (~1e-7 relative; tests/
    test_engine_deltanet.py bounds it); at Qwen3.5-0.8B's 16 x 128 x 128, one thread: 0.14 ms
    against 0.24 ms (bmm with one or two rows per head is torch's fastest form of the read here:
    S^T laid out for a matrix-vector product ran 5x slower)."""
    B, H, dk = k.shape
    dv = v.shape[-1]
    e = g.exp().reshape(B * H, 1)
    kq = torch.stack([k, q], dim=2).view(B * H, 2, dk)
    S = S.view(B * H, dk, dv)
    read = torch.bmm(kq, S)                                           # [BH, 2, dv]: S^T k, S^T q
    delta = torch.addcmul(v.reshape(B * H, dv), read[:, 0], e, value=-1).mul_(beta.reshape(B * H, 1))
    out = torch.addcmul(read[:, 1].mul_(e), delta, (k * q).sum(-1).reshape(B * H, 1))
    S.mul_(e.view(B * H, 1, 1)).addcmul_(k.reshape(B * H, dk, 1), delta.view(B * H, 1, dv))  # (baddbmm_: slower)
    return out.view(B, H, dv)


def _chunked(q, k, v, g, beta, S, chunk: int = CHUNK):
    """_recurrent's result by chunks of positions (as llama.cpp's build_delta_net_chunking and the
    reference implementation's chunked rule): within a chunk the updates are one triangular
    solve and matrix products, the state carried from chunk to chunk. The same numbers up to
    float rounding (~3e-7); Qwen3.5-0.8B's shapes, 511 positions, one thread: 0.19 s against
    0.29 s (the layer's projections take longer than either)."""
    B, T, H, dk = k.shape
    dv = v.shape[-1]
    pad = (-T) % chunk
    q, k, v = (F.pad(t.transpose(1, 2), (0, 0, 0, pad)) for t in (q, k, v))        # [B, H, T', d]
    g, beta = (F.pad(t.transpose(1, 2), (0, pad)) for t in (g, beta))              # [B, H, T'] (pads: no change)
    n = (T + pad) // chunk
    q, k, v = (t.reshape(B, H, n, chunk, -1) for t in (q, k, v))
    g, beta = g.reshape(B, H, n, chunk).cumsum(-1), beta.reshape(B, H, n, chunk, 1)
    k_beta, v_beta = k * beta, v * beta
    lower = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    decay = (g.unsqueeze(-1) - g.unsqueeze(-2)).masked_fill(~lower, float("-inf")).exp()    # [.., i, j]: j <= i
    # (I + A)^-1 with A the strictly lower k_beta k^T decay: each position's update net of the
    # earlier ones' in its chunk
    eye = torch.eye(chunk, device=q.device)
    a = (k_beta @ k.transpose(-1, -2) * decay).masked_fill(~lower.tril(-1), 0.0)
    w = torch.linalg.solve_triangular(a + eye, eye.expand_as(a), upper=False, unitriangular=True)
    u = w @ v_beta                                  # the values each position writes, before the state
    w_state = w @ (k_beta * g.exp().unsqueeze(-1))   # how much of the carried state each one removes
    qk = (q @ k.transpose(-1, -2) * decay)          # (decay is 0 above the diagonal)
    out = torch.empty(B, H, n, chunk, dv, device=q.device)
    for c in range(n):
        v_new = u[:, :, c] - w_state[:, :, c] @ S
        out[:, :, c] = (q[:, :, c] * g[:, :, c, :, None].exp()) @ S + qk[:, :, c] @ v_new
        g_last = g[:, :, c, -1, None]
        written = (k[:, :, c] * (g_last - g[:, :, c]).exp()[..., None]).transpose(-1, -2) @ v_new
        S = S * g_last[..., None].exp() + written
    out = out.reshape(B, H, n * chunk, dv)[:, :, :T]
    return out.transpose(1, 2), S


def _l2_normed(x: torch.Tensor, eps: float) -> torch.Tensor:
    """ggml_l2_norm: x / max(|x|, eps) over the last dimension."""
    return x / x.norm(dim=-1, keepdim=True).clamp(min=eps)

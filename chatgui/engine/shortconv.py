"""LFM2's short-convolution layer, in the place of attention in some of its layers.

x -> in_proj -> b, c, x'; y = c * conv(b * x') over the last `kernel` positions (depthwise,
causal); out_proj(y). As llama.cpp's lfm2.cpp with ggml_ssm_conv.

Its state is the conv input b * x' of earlier positions. It is kept for every position in a
KVCache (the two halves of each row as its "key" and "value"), so that this layer resumes at
any position, slides, rolls back and is batched (batch.BatchKV) exactly as an attention layer's
cache is: prefix reuse, Regenerate and branching need nothing else. It costs dim numbers a
position in float32, against a small model's 2 x n_kv x head_dim for attention.
"""
from __future__ import annotations

import torch
from torch import nn


class ShortConv(nn.Module):
    sliding = False           # (read where attention layers are: Transformer.forward, setup_cache)
    rope = False

    def __init__(self, args):
        super().__init__()
        self.dim, self.kernel = args.dim, args.shortconv_kernel
        self.in_proj: nn.Module | None = None         # set by the loader
        self.out_proj: nn.Module | None = None
        self.register_buffer("conv", torch.zeros(args.dim, args.shortconv_kernel))   # [dim, kernel]
        self.cache = None

    def forward(self, x, start: int, rot=None, mask=None, temperature=None):
        B, T, D = x.shape
        b, c, xs = self.in_proj(x).float().split(D, dim=-1)
        bx = b * xs
        half = D // 2
        first, second = self.cache.update(start, bx[..., :half].unsqueeze(1), bx[..., half:].unsqueeze(1))
        held = torch.cat([first, second], dim=-1)[:, 0].float()     # [B, positions base..start+T, D]
        # the kernel - 1 positions before start (zeros before the first) and the T new ones
        lo = start - (self.kernel - 1) - self.cache.base
        seq = held[:, max(lo, 0):]
        if lo < 0:
            seq = torch.cat([seq.new_zeros(B, -lo, D), seq], dim=1)
        out = (seq.unfold(1, self.kernel, 1) * self.conv).sum(-1)   # [B, T, D]
        return self.out_proj(c * out)

"""Attention variants SDPA has no option for, shared by Transformer.forward (model.py) and the
decode step (decode.py): soft-capped scores (gemma2), attention sinks (gpt-oss), and llama 4
style query temperature by position (mistral3)."""
from __future__ import annotations

import math

import torch


def written_attention(q, k, v, mask, scale: float, cap: float = 0.0, sinks: torch.Tensor | None = None):
    """softmax(q k^T * scale [capped: cap * tanh(s / cap)], with a sink logit per head) v, in
    float32. q [B, H, T, hd]; k, v [B, H or fewer, S, hd] (shared by groups of query heads);
    mask [T, S] bool or None; sinks broadcastable to [B, H, T, 1]: a logit that takes part in the
    softmax with no value behind it."""
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = torch.matmul(q.float() * scale, k.float().transpose(-1, -2))
    if cap:
        scores = torch.tanh(scores / cap) * cap
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if sinks is None:
        return torch.matmul(torch.softmax(scores, dim=-1), v.float())
    scores = torch.cat([scores, sinks.float().expand(*scores.shape[:-1], 1)], dim=-1)
    return torch.matmul(torch.softmax(scores, dim=-1)[..., :-1], v.float())


def temperature(args, start: int, T: int, device) -> torch.Tensor | None:
    """The query scale [T, 1] (rows of q [B, heads, T, hd]) for positions start..start+T, as
    llama.cpp's llm_graph_input_attn_temp: 1 + scale * log(floor(pos / original context) + 1).
    None where the model has none."""
    if not args.attn_temp_scale:
        return None
    pos = torch.arange(start, start + T, dtype=torch.float64, device=device)
    scale = torch.log(torch.floor(pos / args.yarn_orig_context) + 1.0) * args.attn_temp_scale + 1.0
    return scale.float().view(T, 1)


def temperature_at(args, pos: int) -> float:
    """temperature() for one position, as a number (1.0: none)."""
    if not args.attn_temp_scale:
        return 1.0
    return math.log(math.floor(pos / args.yarn_orig_context) + 1.0) * args.attn_temp_scale + 1.0

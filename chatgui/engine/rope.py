"""Rotary position embeddings, interleaved ("GPT-J") layout: for a batch (model.py) and for the
heads of one token (decode.py)."""
from __future__ import annotations

import torch


def apply_rope(x: torch.Tensor, rot: torch.Tensor, rope_dim: int) -> torch.Tensor:
    """Interleaved ("GPT-J") RoPE: dims (2j, 2j+1) of each head rotate together.
    x [B, T, H, D]; rot [T, rope_dim/2] complex; the result is float32. NeoX-layout models are permuted into this
    layout at load time (loader.py), so there is one code path."""
    B, T, H, D = x.shape
    if rope_dim == D:
        xc = torch.view_as_complex(x.float().reshape(B, T, H, D // 2, 2))
        return torch.view_as_real(xc * rot.view(1, T, 1, D // 2)).reshape(B, T, H, D)
    head, tail = x[..., :rope_dim], x[..., rope_dim:]
    return torch.cat([apply_rope(head.contiguous(), rot, rope_dim), tail.float()], dim=-1)


def rope_row(x: torch.Tensor, rot: torch.Tensor, rope_dim: int) -> torch.Tensor:
    """apply_rope for the heads of one token: x [H, D], rot [rope_dim/2] complex -> [H, D] float32."""
    H, D = x.shape
    if rope_dim == D:
        return torch.view_as_real(torch.view_as_complex(x.float().view(H, D // 2, 2)) * rot).view(H, D)
    return apply_rope(x.view(1, 1, H, D), rot.view(1, -1), rope_dim).view(H, D)

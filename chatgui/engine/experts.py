"""Mixture-of-Experts MLP (qwen3moe): a router picks each token's top-k experts, and only those run.

The experts stay as the file stores them (memory-mapped, quantized): a layer's gate/up/down
experts are 3-D tensors [n_experts, rows, cols], and each chosen expert's slice is dequantized
from its own blocks when a token needs it. Tokens are grouped by expert, so a prompt converts each
chosen expert once. As llama.cpp's build_moe_ffn with softmax gating: the router's softmax over
all experts, the top k, their weights renormalized to sum to 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .quant import _dequantize_raw, raw_rows


def expert_matrix(path, t: TensorInfo, e: int) -> torch.Tensor:
    """Expert e's float32 [rows, cols] matrix of a 3-D expert tensor, from its own blocks (each row
    of a GGUF tensor starts a block, so a slice of whole rows dequantizes alone)."""
    _, rows, _ = t.shape
    return _dequantize_raw(path, t, raw_rows(t)[e].view(rows, -1), rows)


class Experts:
    """One layer's gate, up and down experts as stored in the file."""

    def __init__(self, path, gate: TensorInfo, up: TensorInfo, down: TensorInfo):
        self.path, self.gate, self.up, self.down = path, gate, up, down

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e's SwiGLU MLP on x [n, dim] (float32)."""
        def m(t):
            return expert_matrix(self.path, t, e).to(x.device)
        return (F.silu(x @ m(self.gate).T) * (x @ m(self.up).T)) @ m(self.down).T


class MoEFeedForward(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.k = args.n_experts_used
        self.register_buffer("router", None)          # [n_experts, dim] float32 (set by the loader)
        self.experts: Experts | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        probs = torch.softmax(flat @ self.router.T, dim=-1)
        weights, chosen = probs.topk(self.k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e in chosen.unique().tolist():
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            out.index_add_(0, rows, self.experts.run(e, flat[rows]) * weights[rows, slot, None])
        return out.view(shape)

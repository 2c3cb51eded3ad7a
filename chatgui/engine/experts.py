"""Mixture-of-Experts MLP (qwen3moe, granitemoe, gpt-oss, qwen35moe): a router picks each token's top-k
experts, and only those run.

The experts stay as the file stores them (memory-mapped, quantized): a layer's gate/up/down
experts are 3-D tensors [n_experts, rows, cols], and each chosen expert's slice is dequantized
from its own blocks when a token needs it, or (on a CPU with the native kernels, issue 33) its rows
are multiplied as stored, where the file is mapped. Tokens are grouped by expert, so a prompt
converts or reads each chosen expert once, for all its tokens in one product. As llama.cpp's
build_moe_ffn with softmax gating: the router's softmax over all experts, the top k, their
weights renormalized to sum to 1 (MoEFeedForward.forward).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gguf_file import TensorInfo
from .native_linear import NativeProduct
from .quant import _dequantize_raw, raw_rows


def expert_matrix(path, t: TensorInfo, e: int) -> torch.Tensor:
    """Expert e's float32 [rows, cols] matrix of a 3-D expert tensor, from its own blocks (each row
    of a GGUF tensor starts a block, so a slice of whole rows dequantizes alone)."""
    _, rows, _ = t.shape
    return _dequantize_raw(path, t, raw_rows(t)[e].view(rows, -1), rows)


# gpt-oss's expert activation (llama.cpp's swiglu_oai): the gate clamped above, the up projection
# on both sides, and gate * sigmoid(alpha * gate) * (up + 1).
OAI_ALPHA, OAI_LIMIT = 1.702, 7.0


def swiglu_oai(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    gate = gate.clamp(max=OAI_LIMIT)
    return gate * torch.sigmoid(OAI_ALPHA * gate) * (up.clamp(-OAI_LIMIT, OAI_LIMIT) + 1)


class Experts:
    """One layer's gate, up and down experts as stored in the file, and their biases (float32
    [n_experts, rows] each) where the model has them."""

    def __init__(self, path, gate: TensorInfo, up: TensorInfo, down: TensorInfo,
                 biases: list[torch.Tensor] | None = None, act: str = "silu", native: bool = False):
        """native: multiply on the native kernels (the loader decides: a CPU, the library built,
        types it has); else each chosen expert's slices are dequantized when a token needs them."""
        self.path, self.gate, self.up, self.down = path, gate, up, down
        self.biases = biases
        self.act = swiglu_oai if act == "swiglu_oai" else (lambda g, u: F.silu(g) * u)
        # expert e -> (its gate and up rows as one product, its down rows), made when first chosen
        self.native: dict[int, tuple[NativeProduct, NativeProduct]] | None = {} if native else None

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e's gated MLP on x [n, dim] (float32)."""
        if self.native is not None:
            return self._run_native(e, x)

        def proj(i, t, v):
            y = v @ expert_matrix(self.path, t, e).to(x.device).T
            return y if self.biases is None else y + self.biases[i][e].to(x.device)
        return proj(2, self.down, self.act(proj(0, self.gate, x), proj(1, self.up, x)))

    def _run_native(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """The same on the native kernels, over expert e's rows where the file is mapped: one call
        for gate and up side by side, one for down, each for all of x's rows at once."""
        products = self.native.get(e)
        if products is None:
            products = self.native[e] = (NativeProduct([self.gate, self.up], expert=e),
                                         NativeProduct([self.down], expert=e))
        gate_up = products[0](x)
        ff = self.gate.shape[1]
        gate, up = gate_up[:, :ff], gate_up[:, ff:]
        if self.biases is not None:
            gate, up = gate + self.biases[0][e], up + self.biases[1][e]
        y = products[1](self.act(gate, up))
        return y if self.biases is None else y.add_(self.biases[2][e])


class MoEFeedForward(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.k = args.n_experts_used
        self.register_buffer("router", None)          # [n_experts, dim] float32 (set by the loader)
        self.register_buffer("router_bias", None)     # [n_experts] (gpt-oss)
        self.experts: Experts | None = None
        # qwen35moe: a dense expert every token runs, weighted by sigmoid(x . shared_gate)
        self.shared: nn.Module | None = None
        self.register_buffer("shared_gate", None)     # [dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        logits = flat @ self.router.T
        if self.router_bias is not None:
            logits = logits + self.router_bias
        # The top k by router logit, weighted by the softmax over those k: the same as llama.cpp's
        # softmax over all experts renormalized over the chosen (qwen3moe) and its softmax over the
        # chosen logits (gpt-oss), which are one function.
        top, chosen = logits.topk(self.k, dim=-1)
        weights = torch.softmax(top, dim=-1)
        if flat.shape[0] == 1:      # decode: no grouping to do (unique, nonzero and index_put cost ~0.1 ms each)
            out = None
            for e, wt in zip(chosen[0].tolist(), weights[0].tolist()):
                y = self.experts.run(e, flat).mul_(wt)
                out = y if out is None else out.add_(y)
        else:
            out = self._grouped(flat, chosen, weights)
        if self.shared is not None:
            out += self.shared(flat).float() * torch.sigmoid(flat @ self.shared_gate)[:, None]
        return out.view(shape)

    def _grouped(self, flat, chosen, weights):
        """A prompt's tokens grouped by expert: one product per chosen expert for all its tokens."""
        out = torch.zeros_like(flat)
        for e in chosen.unique().tolist():
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            out[rows] += self.experts.run(e, flat[rows]) * weights[rows, slot, None]     # (a token picks e once)
        return out

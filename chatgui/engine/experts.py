"""Mixture-of-Experts MLP (qwen3moe, granitemoe, gpt-oss, qwen35moe, gemma4's 26B-A4B): a router picks
each token's top-k experts, and only those run.

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

import numpy as np

from . import native
from .gguf_file import TensorInfo
from .native_linear import NativeProduct, _mapped_bytes
from .quant import _dequantize_raw, raw_rows

# native.Segment as a numpy record, so that a token's chosen experts' segments are one gather
SEGMENT = np.dtype([("type", "<i4"), ("n_rows", "<i4"), ("row_bytes", "<i8"), ("w", "<u8"), ("row_ids", "<u8")])
MAX_SEGMENTS = 16          # (cg_linear's limit a call)


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


ACTIVATIONS = {"silu": lambda g, u: F.silu(g) * u, "swiglu_oai": swiglu_oai,
               "gelu_tanh": lambda g, u: F.gelu(g, approximate="tanh") * u}


class Experts:
    """One layer's gate, up and down experts as stored in the file, and their biases (float32
    [n_experts, rows] each) where the model has them."""

    def __init__(self, path, gate_up: list[TensorInfo], down: TensorInfo,
                 biases: list[torch.Tensor] | None = None, act: str = "silu", native: bool = False):
        """gate_up: the gate and up experts, or one tensor holding both (each expert's gate rows,
        then its up rows: gemma4's ffn_gate_up_exps). native: multiply on the native kernels (the
        loader decides: a CPU, the library built, types it has); else each chosen expert's slices
        are dequantized when a token needs them."""
        self.path, self.gate_up, self.down = path, gate_up, down
        self.ff = down.shape[-1]                  # an expert's hidden width
        self.biases = biases
        self.act = ACTIVATIONS[act]
        # expert e -> (its gate and up rows as one product, its down rows), made when first chosen
        self.native: dict[int, tuple[NativeProduct, NativeProduct]] | None = {} if native else None
        self._tables: tuple[np.ndarray, np.ndarray] | None = None     # (run_chosen's, made when first needed)
        self._keep: list[np.ndarray] = []

    def run(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """Expert e's gated MLP on x [n, dim] (float32)."""
        if self.native is not None:
            return self._run_native(e, x)
        gate_up = torch.cat([expert_matrix(self.path, t, e) for t in self.gate_up]).to(x.device)
        gate, up = (x @ gate_up.T).split(self.ff, dim=-1)
        if self.biases is not None:
            gate, up = gate + self.biases[0][e].to(x.device), up + self.biases[1][e].to(x.device)
        y = self.act(gate, up) @ expert_matrix(self.path, self.down, e).to(x.device).T
        return y if self.biases is None else y + self.biases[2][e].to(x.device)

    def run_chosen(self, chosen: list[int], weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum_i weights[i] * expert chosen[i](x) for one row x [1, dim] (decode) on the native
        kernels: the gate and up rows of all chosen experts in one library call (x quantized
        once, the threads sharing all their rows), each expert's down, then one weighted sum."""
        if self._tables is None:
            self._tables = self._segment_tables()
        gate_up_table, down_table = self._tables
        linear = native.library().cg_linear
        ff, k, dim = self.ff, len(chosen), x.shape[1]
        x = x.contiguous()
        per_expert = gate_up_table.shape[1]
        segs = np.ascontiguousarray(gate_up_table[chosen].reshape(-1))
        gate_up = torch.empty(k, 2 * ff)
        step = MAX_SEGMENTS // per_expert                  # (experts a call: whole ones)
        for first in range(0, k, step):
            n = min(step, k - first)
            _check(linear(n * per_expert, segs.ctypes.data + first * per_expert * SEGMENT.itemsize, dim,
                          x.data_ptr(), 1, dim, gate_up.data_ptr() + first * 2 * ff * 4, k * 2 * ff))
        gate, up = gate_up[:, :ff], gate_up[:, ff:]
        if self.biases is not None:
            gate, up = gate + self.biases[0][chosen], up + self.biases[1][chosen]
        h = self.act(gate, up).contiguous()
        y = torch.empty(k, dim)
        # (pointers, not row views: eight views and their checks cost more than the products' calls)
        downs, h_at, y_at = down_table.ctypes.data, h.data_ptr(), y.data_ptr()
        for i, e in enumerate(chosen):
            _check(linear(1, downs + e * SEGMENT.itemsize, ff, h_at + i * ff * 4, 1, ff, y_at + i * dim * 4, dim))
        if self.biases is not None:
            y += self.biases[2][chosen]
        return (weights @ y).view(1, -1)

    def _segment_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Every expert's segments: [n_experts, len(gate_up)] and [n_experts] SEGMENT records over
        the mapped file (the arrays they point into are kept)."""
        def table(t: TensorInfo) -> np.ndarray:
            raw = _mapped_bytes(t)
            self._keep.append(raw)
            n, rows = t.shape[0], t.shape[1]
            rec = np.zeros(n, SEGMENT)
            rec["type"], rec["n_rows"], rec["row_bytes"] = native.TYPES[t.qtype_name], rows, raw.nbytes // (n * rows)
            rec["w"] = raw.ctypes.data + np.arange(n, dtype=np.uint64) * np.uint64(raw.nbytes // n)
            return rec
        return np.stack([table(t) for t in self.gate_up], axis=1), table(self.down)

    def _run_native(self, e: int, x: torch.Tensor) -> torch.Tensor:
        """The same on the native kernels, over expert e's rows where the file is mapped: one call
        for gate and up side by side, one for down, each for all of x's rows at once."""
        products = self.native.get(e)
        if products is None:
            products = self.native[e] = (NativeProduct(self.gate_up, expert=e), NativeProduct([self.down], expert=e))
        gate_up = products[0](x)
        ff = self.ff
        gate, up = gate_up[:, :ff], gate_up[:, ff:]
        if self.biases is not None:
            gate, up = gate + self.biases[0][e], up + self.biases[1][e]
        y = products[1](self.act(gate, up))
        return y if self.biases is None else y.add_(self.biases[2][e])


def _check(rc: int) -> None:
    if rc:
        raise RuntimeError(f"native product failed (code {rc})")


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
        self.register_buffer("expert_scale", None)    # [n_experts]: each expert's output times this (gemma4)

    def forward(self, x: torch.Tensor, router_input: torch.Tensor | None = None) -> torch.Tensor:
        """router_input: what the router reads where it is not x (gemma4), of x's shape."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()
        logits = (flat if router_input is None else router_input.reshape(-1, shape[-1]).float()) @ self.router.T
        if self.router_bias is not None:
            logits = logits + self.router_bias
        # The top k by router logit, weighted by the softmax over those k: the same as llama.cpp's
        # softmax over all experts renormalized over the chosen (qwen3moe) and its softmax over the
        # chosen logits (gpt-oss), which are one function.
        top, chosen = logits.topk(self.k, dim=-1)
        weights = torch.softmax(top, dim=-1)
        if self.expert_scale is not None:
            weights = weights * self.expert_scale[chosen]
        if flat.shape[0] == 1 and self.experts.native is not None:
            out = self.experts.run_chosen(chosen[0].tolist(), weights[0], flat)
        elif flat.shape[0] == 1:      # decode: no grouping to do (unique, nonzero and index_put cost ~0.1 ms each)
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


class DenseAndExperts(nn.Module):
    """gemma4 26B-A4B's MLP (archs.Arch.dense_and_experts), as llama.cpp's gemma4 graph: the
    layer's dense MLP and its experts side by side on the attention block's output h, each branch
    normed before and after on its own; the router reads h RMS-normed without weight, times a
    learned vector / sqrt(dim). (The Block's ffn_norm is the dense branch's pre-norm and its
    ffn_post_norm norms the sum.)"""

    def __init__(self, args, dense: nn.Module, norm):
        """dense: the dense MLP; norm(): a new RMSNorm over dim (model.RMSNorm)."""
        super().__init__()
        self.dense = dense
        self.moe = MoEFeedForward(args)
        self.dense_post_norm, self.experts_norm, self.experts_post_norm = norm(), norm(), norm()
        self.eps = args.norm_eps
        self.register_buffer("router_scale", None)    # [dim]: ffn_gate_inp.scale / sqrt(dim) (the loader)

    def forward(self, normed: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """normed: h through the dense branch's pre-norm (the Block's ffn_norm)."""
        dense = self.dense_post_norm(self.dense(normed))
        route = F.rms_norm(h.float(), (h.shape[-1],), None, self.eps) * self.router_scale
        return dense + self.experts_post_norm(self.moe(self.experts_norm(h), route))

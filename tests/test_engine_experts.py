"""Mixture-of-Experts layers (engine/experts.py): only the chosen experts are read and computed."""
from __future__ import annotations

import torch

from chatgui.engine import experts
from chatgui.engine.chat_model import load_model
from chatgui.engine.gguf_file import GGUFFile
from chatgui.engine.loader import BASE_MEMORY, _kv_bytes, estimated_memory_bytes, read_model_args
from tiny_gguf import write_tiny_model


def test_a_token_dequantizes_only_its_chosen_experts(tmp_path, monkeypatch):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch="qwen3moe", qtype="Q8_0"), device="cpu")
    a = m.net.args
    assert (a.n_experts, a.n_experts_used) == (8, 2)
    m.net(torch.tensor([[5, 6, 7]]), 0)
    read: list[tuple[str, int]] = []
    real = experts.expert_matrix
    monkeypatch.setattr(experts, "expert_matrix", lambda path, t, e: read.append((t.name, e)) or real(path, t, e))
    x = torch.randn(1, 1, a.dim)
    layer = m.net.layers[0].ffn
    chosen = set(torch.softmax(x[0] @ layer.router.T, -1).topk(2).indices[0].tolist())
    layer(x)
    assert {e for _, e in read} == chosen
    assert len(read) == 3 * 2            # gate, up and down of each of the two, once


def test_the_memory_estimate_counts_experts_as_stored(tmp_path):
    """Experts are used from the mapped file: counted at their size there, even where every other
    weight is counted as float32."""
    path = write_tiny_model(tmp_path / "m.gguf", arch="qwen3moe", qtype="Q8_0")
    gf = GGUFFile(path)
    args = read_model_args(gf)
    exps = [t for name, t in gf.tensors.items() if name.endswith("_exps.weight")]
    others = [t for name, t in gf.tensors.items() if not name.endswith("_exps.weight")]
    assert len(exps) == 3 * args.n_layers
    expected = BASE_MEMORY + _kv_bytes(args, 256, 4) + sum(4 * _count(t) for t in others) + \
        sum(t.data.nbytes for t in exps)
    assert estimated_memory_bytes(gf, args, 256, precision="float32") == expected


def _count(t) -> int:
    n = 1
    for d in t.shape:
        n *= d
    return n

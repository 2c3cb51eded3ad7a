"""Mixture-of-Experts layers (engine/experts.py): only the chosen experts are read and computed."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chatgui.engine import experts, native, native_linear
from chatgui.engine.chat_model import load_model
from chatgui.engine.archs import GEMMA4_MOE_TEST
from chatgui.engine.gguf_file import GGUFFile
from chatgui.engine.loader import BASE_MEMORY, _kv_bytes, estimated_memory_bytes, read_model_args
from test_native_kernels import activations, check_product
from tiny_gguf import write_tiny_model

needs_kernels = pytest.mark.skipif(not native.available(), reason=f"native kernels {native.why_not()}")


def test_a_token_dequantizes_only_its_chosen_experts(tmp_path, monkeypatch):
    """The fallback (no library, a GPU, a type the kernels lack): each chosen expert's slices."""
    monkeypatch.setattr(native_linear, "usable", lambda *args, **kwargs: False)
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
    assert layer.experts.native is None


@needs_kernels
def test_on_the_native_kernels_a_token_reads_only_its_chosen_experts(tmp_path, monkeypatch):
    """Decode (one row: Experts.run_chosen) and a prompt (grouped by expert: per-expert products)
    read the rows of the chosen experts only, as stored (nothing dequantized)."""
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch="qwen3moe", qtype="Q8_0"), device="cpu")
    layer = m.net.layers[0].ffn
    assert layer.experts.native == {}                # nothing made before a token needs it
    monkeypatch.setattr(experts, "expert_matrix", lambda *a: pytest.fail("dequantized an expert"))
    lib = native.library()
    read: set[int] = set()                           # the addresses of the rows the library was given

    class Recording:
        def cg_linear(self, nseg, segs, *rest):
            records = np.frombuffer((ctypes.c_char * (nseg * experts.SEGMENT.itemsize)).from_address(segs),
                                    experts.SEGMENT)
            read.update(int(w) for w in records["w"])
            return lib.cg_linear(nseg, segs, *rest)
    monkeypatch.setattr(experts.native, "library", lambda: Recording())
    x = torch.randn(1, 1, m.net.args.dim)
    chosen = set((x[0] @ layer.router.T).topk(2).indices[0].tolist())
    layer(x)
    gate_up, down = layer.experts._tables
    assert read == {int(w) for e in chosen for w in [*gate_up[e]["w"], down[e]["w"]]}
    x = torch.randn(1, 3, m.net.args.dim)
    chosen = set((x[0] @ layer.router.T).topk(2).indices.flatten().tolist())
    layer(x)
    assert set(layer.experts.native) == chosen


def _experts(tmp_path, arch, qtype):
    """A tiny model's first MoE layer (arch "gemma4-moe": Gemma 4's MoE variant, its experts'
    part of the layer)."""
    metadata = GEMMA4_MOE_TEST if arch == "gemma4-moe" else None
    path = write_tiny_model(tmp_path / "m.gguf", arch=arch.removesuffix("-moe"), qtype=qtype, metadata=metadata)
    m = load_model(path, device="cpu")
    ffn = m.net.layers[0].ffn
    return m.net.args, ffn.moe if isinstance(ffn, experts.DenseAndExperts) else ffn


@needs_kernels
@pytest.mark.parametrize("arch,qtype", [("qwen3moe", "Q8_0"), ("qwen3moe", "Q4_0"), ("gpt-oss", "Q8_0"),
                                        ("gemma4-moe", "Q8_0")])
def test_each_native_expert_product_is_the_float64_product_within_int8_rounding(tmp_path, arch, qtype):
    """Expert e's products read exactly its rows of the 3-D tensors (a slice in the middle of
    the file's tensor), for several activation rows at once (a prompt's tokens grouped)."""
    args, layer = _experts(tmp_path, arch, qtype)
    ex = layer.experts
    assert ex.native is not None
    x = activations(5, args.dim, seed=2)
    for e in (0, 3, args.n_experts - 1):
        ex.run(e, x)
        gate_up, down = ex.native[e]
        w_gu = torch.cat([experts.expert_matrix(ex.path, t, e) for t in ex.gate_up])    # (gemma4: one tensor)
        check_product(gate_up(x), x, w_gu.double(), 32)
        h = activations(5, ex.down.shape[-1], seed=e)
        check_product(down(h), h, experts.expert_matrix(ex.path, ex.down, e).double(), 32)


@needs_kernels
@pytest.mark.parametrize("arch", ["qwen3moe", "gpt-oss", "gemma4-moe"])
def test_the_native_moe_layer_equals_the_fallback_within_int8_rounding(tmp_path, arch):
    """The whole layer (router, grouping of 7 tokens by expert, activation, biases where the model
    has them) on both paths: they differ only by the activations' int8 rounding."""
    args, layer = _experts(tmp_path, arch, "Q8_0")
    x = torch.randn(1, 7, args.dim)
    native_out = layer(x)
    layer.experts.native = None
    fallback = layer(x)
    err = (native_out - fallback).pow(2).mean().sqrt()
    assert 0 < float(err) < 0.02 * float(fallback.pow(2).mean().sqrt())
    assert float(F.cosine_similarity(native_out.flatten(), fallback.flatten(), 0)) > 0.999


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


@pytest.mark.parametrize("arch", ["qwen3moe", "gpt-oss", "qwen35moe", "gemma4-moe"])
def test_one_token_takes_the_ungrouped_path_with_the_same_result(tmp_path, arch):
    args, layer = _experts(tmp_path, arch, "Q8_0")
    x = torch.randn(1, 1, args.dim)
    flat = x.reshape(1, -1)
    top, chosen = (flat @ layer.router.T + (0 if layer.router_bias is None else layer.router_bias)).topk(layer.k)
    weights = torch.softmax(top, -1) * (1 if layer.expert_scale is None else layer.expert_scale[chosen])
    grouped = layer._grouped(flat, chosen, weights)
    if layer.shared is not None:
        grouped += layer.shared(flat).float() * torch.sigmoid(flat @ layer.shared_gate)[:, None]
    torch.testing.assert_close(layer(x).reshape(1, -1), grouped, rtol=1e-5, atol=1e-6)


@needs_kernels
@pytest.mark.parametrize("arch", ["qwen3moe", "gpt-oss", "gemma4-moe"])
def test_decode_runs_the_chosen_experts_together_as_each_alone(tmp_path, arch):
    """Experts.run_chosen (decode: all chosen experts' gate and up rows in one library call, then
    their downs, then one weighted sum) gives the weighted sum of each expert run alone; the
    products are the same rows on the same quantized input, so only the sum's order differs.
    With 10 experts chosen (20 segments: two calls) as well as the model's own count."""
    args, layer = _experts(tmp_path, arch, "Q8_0")
    ex = layer.experts
    x = activations(1, args.dim, seed=5)
    for chosen in ([5, 0, 3, 7][:args.n_experts_used], [7, 1, 4, 0, 2, 6, 3, 5, 1, 0]):
        weights = torch.rand(len(chosen), generator=torch.Generator().manual_seed(len(chosen)))
        expected = sum(w * ex.run(e, x) for e, w in zip(chosen, weights.tolist()))
        torch.testing.assert_close(ex.run_chosen(chosen, weights, x), expected, rtol=1e-5, atol=1e-6)

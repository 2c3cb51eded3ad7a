"""The Transformer: KV-cache decoding equals a full forward pass; RoPE layouts."""
from __future__ import annotations

import pytest
import torch

from chatgui.engine import load_model
from chatgui.engine.model import apply_rope
from tiny_gguf import write_tiny_model


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_kv_cache_decode_equals_full_forward(tmp_path, arch):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch=arch), device="cpu")
    ids = torch.randint(3, 250, (1, 40), generator=torch.Generator().manual_seed(0))
    full = m.net(ids, 0)[0]
    # Prefill 25 tokens, then decode the rest one by one through the cache.
    step = [m.net(ids[:, :25], 0)[0]]
    for t in range(25, 40):
        step.append(m.net(ids[:, t:t + 1], t)[0])
    torch.testing.assert_close(torch.cat(step), full, rtol=1e-4, atol=1e-4)


def test_gemma3_sliding_window_limits_attention(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch="gemma3", n_layers=2), device="cpu")
    m.net.args.sliding_window = 4
    m.net.args.sliding_window_pattern = 2   # layer 0 slides, layer 1 is global
    for i, layer in enumerate(m.net.layers):
        layer.attn.sliding = m.net.args.is_sliding(i)
    assert [layer.attn.sliding for layer in m.net.layers] == [True, False]
    ids = torch.randint(3, 250, (1, 12), generator=torch.Generator().manual_seed(1))
    full = m.net(ids, 0)[0]
    step = [m.net(ids[:, :5], 0)[0]] + [m.net(ids[:, t:t + 1], t)[0] for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(step), full, rtol=1e-4, atol=1e-4)
    # Changing a token outside every window of the sliding layer still matters through the
    # global layer, so only check that the window path differs from full attention.
    m.net.args.sliding_window = 0
    for layer in m.net.layers:
        layer.attn.sliding = False
    assert not torch.allclose(m.net(ids, 0)[0], full)


def test_rope_layouts_agree_up_to_a_permutation():
    """Interleaved RoPE on x equals rotate-half RoPE on x with its pairs de-interleaved: the
    permutation llama.cpp applies to llama's Q/K rows."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 8)
    ang = torch.outer(torch.arange(5.0), 1.0 / 10000 ** (torch.arange(0, 4) * 2 / 8))
    cos, sin = ang.cos(), ang.sin()
    inter = apply_rope(x, cos, sin, 8, interleaved=True)
    perm = torch.cat([torch.arange(0, 8, 2), torch.arange(1, 8, 2)])
    neox = apply_rope(x[..., perm], cos, sin, 8, interleaved=False)
    torch.testing.assert_close(inter[..., perm], neox)
    # Rotation keeps norms.
    torch.testing.assert_close(inter.norm(dim=-1), x.norm(dim=-1))

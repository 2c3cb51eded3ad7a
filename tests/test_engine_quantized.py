"""Compact weight forms per GGUF type, the on-disk weight cache, and refusing what cannot load."""
from __future__ import annotations

import threading

import pytest
import torch

from chatgui.engine import ModelLoadError, load_model
from chatgui.engine import qlinear, weight_cache
from tiny_gguf import write_tiny_model


def _linears(m):
    return [mod for layer in m.net.layers for mod in (layer.attn.wqkv, layer.attn.wo, layer.ffn.w13, layer.ffn.w2)]


def _wait_for_cache_writes():
    for t in threading.enumerate():
        if t.name == "chatgui-cache-save":
            t.join()


_FP16 = qlinear.Fp16Linear if qlinear.fp16_gemm_works() else qlinear.Int8Linear


@pytest.mark.parametrize("qtype,form", [("Q4_0", qlinear.Int4Linear), ("Q4_1", qlinear.Int4Linear),
                                        ("Q5_0", _FP16), ("Q5_1", _FP16), ("Q8_0", _FP16),
                                        ("Q8_0-int8", qlinear.Int8Linear), ("F16", qlinear.DenseLinear)])
def test_each_type_keeps_its_compact_form_and_tracks_float32(tmp_path, monkeypatch, qtype, form):
    if qtype.endswith("-int8"):     # where FBGEMM is missing (ARM builds): int8 per row
        qtype = qtype[:-5]
        monkeypatch.setattr(qlinear, "FP16_ON_CPU", False)
    p = write_tiny_model(tmp_path / "m.gguf", qtype=qtype)
    fast, exact = load_model(p, device="cpu"), load_model(p, device="cpu", precision="float32")
    assert all(type(mod) is form for mod in _linears(fast))
    ids = list(range(10, 60))
    a, b = fast.logprobs(ids), exact.logprobs(ids)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
    assert float((a.exp() - b.exp()).abs().sum(-1).max()) < 0.1     # total variation per position


@pytest.mark.skipif(not qlinear.fp16_gemm_works(), reason="this torch build has no FBGEMM fp16 GEMM")
@pytest.mark.parametrize("magnitude", [0.02, 1e-7, 1e5])
def test_fp16_form_matches_the_float32_product(magnitude):
    """Fp16Linear (packed after construction, as the loader does in the background) computes
    x @ w.T within float16 rounding of w, also for weights outside float16's normal range."""
    w = torch.randn(48, 64) * magnitude
    bias = torch.randn(48)
    w16, e = qlinear.fp16_parts(w)
    assert (e == 0) == (magnitude == 0.02)
    mod = qlinear.Fp16Linear(w16, e, bias)
    with pytest.raises(RuntimeError):
        mod.kernel()
    mod.pack()
    x = torch.randn(3, 64)
    want = x @ w.T + bias
    got = mod(x)
    assert got.dtype == torch.float32
    assert float((got - want).abs().max()) <= 2e-3 * float((x.abs() @ w.abs().T).max()) + 1e-3 * magnitude


def test_int8_rows_round_trip_is_within_half_a_step():
    w = torch.randn(64, 96) * torch.rand(64, 1)
    q, scale = qlinear.int8_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    assert float(((q.float() * scale[:, None] - w).abs() / scale[:, None]).max()) <= 0.5 + 1e-4


def test_a_type_without_compact_form_warns_by_name_and_runs_dense(tmp_path, monkeypatch):
    monkeypatch.setattr(qlinear, "INT8_REROUNDED", ())
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0")
    with pytest.warns(RuntimeWarning, match="Q8_0"):
        m = load_model(p, device="cpu")
    assert all(type(mod) is qlinear.DenseLinear for mod in _linears(m))
    assert torch.isfinite(m.logprobs(m.tokenize("hello there"))).all()


def test_a_model_too_big_for_memory_is_refused_with_both_figures(tmp_path, monkeypatch):
    from chatgui.engine import loader
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_1")
    monkeypatch.setattr(loader, "available_memory_bytes", lambda: 100 << 20)
    monkeypatch.setattr(loader, "build_transformer", lambda *a, **k: pytest.fail("must refuse before loading"))
    with pytest.raises(ModelLoadError) as ei:
        load_model(p, device="cpu")
    msg = str(ei.value)
    assert "needs about 0.4 GB" in msg and "0.1 GB available" in msg and str(p) in msg


# -- the weight cache -----------------------------------------------------------------------------
@pytest.fixture
def cached_model(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_1")
    first = load_model(p, device="cpu")
    _wait_for_cache_writes()
    files = list(weight_cache.cache_dir().glob("*" + weight_cache.SUFFIX))
    assert len(files) == 1 and weight_cache.cache_size_bytes() == files[0].stat().st_size > 0
    return p, files[0], first.logprobs(list(range(10, 40)))


def _load_without_converting(p, monkeypatch):
    """A load that fails if it has to repack anything: it must come from the cache."""
    monkeypatch.setattr("chatgui.engine.loader.int4_parts", lambda t: pytest.fail("converted, cache unused"))
    return load_model(p, device="cpu")


def test_second_load_maps_the_cache_and_computes_the_same(cached_model, monkeypatch):
    p, cache, lp = cached_model
    m = _load_without_converting(p, monkeypatch)
    assert torch.equal(m.logprobs(list(range(10, 40))), lp)


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "other_version", "source_changed"])
def test_a_bad_cache_is_detected_and_rebuilt(cached_model, monkeypatch, caplog, damage):
    p, cache, lp = cached_model
    data = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(data[:len(data) // 2])
    elif damage == "corrupt":
        cache.write_bytes(data[:-100] + bytes([data[-100] ^ 0x40]) + data[-99:])
    elif damage == "other_version":
        monkeypatch.setattr(weight_cache, "FORMAT_VERSION", weight_cache.FORMAT_VERSION + 1)
    else:   # the model file replaced in place by another of the same size
        with open(p, "r+b") as f:
            f.seek(-8, 2)
            f.write(b"\x00" * 8)
    with caplog.at_level("WARNING"):
        m = load_model(p, device="cpu")
    _wait_for_cache_writes()
    if damage in ("truncated", "corrupt"):
        assert "unusable" in caplog.text
        assert torch.equal(m.logprobs(list(range(10, 40))), lp)
    files = list(weight_cache.cache_dir().glob("*" + weight_cache.SUFFIX))
    assert len(files) == 1, "a rebuilt cache replaces the bad one"
    m2 = _load_without_converting(p, monkeypatch)       # and the rebuilt one is used
    assert torch.equal(m2.logprobs(list(range(10, 40))), m.logprobs(list(range(10, 40))))


def test_clear_cache_frees_the_space(cached_model):
    size = weight_cache.cache_size_bytes()
    assert weight_cache.clear_cache() == size > 0
    assert weight_cache.cache_size_bytes() == 0

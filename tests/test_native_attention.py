"""A decode step's attention on the native library (engine/native_attention.py, cg_attend) and
who has the cores while a model on the native kernels runs (engine/cores.py)."""
from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from chatgui.engine import cores, load_model, native
from chatgui.engine.native_attention import DecodeAttention, attend
from chatgui.engine.native_linear import NativeLinear
from tiny_gguf import write_tiny_model

needs_kernels = pytest.mark.skipif(not native.available(), reason=f"native kernels {native.why_not()}")
PATHS = [p for p in ("portable", "avx2", "avx512") if native.available() and native.supports(p)]


@pytest.fixture
def on_path(request):
    before = native.library().cg_threads()
    native.select(request.param)
    yield request.param
    native.select(None)
    native.set_threads(before)


def _qkv(n_kv, group, hd, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, n_kv, group, hd, generator=g)
    k = (3 * torch.randn(1, n_kv, n, hd, generator=g)).to(dtype)       # scores far apart: a peaked softmax
    v = torch.randn(1, n_kv, n, hd, generator=g).to(dtype)
    return q, k, v


@needs_kernels
@pytest.mark.parametrize("on_path", PATHS, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n_kv,group,hd,n", [(2, 6, 128, 300), (1, 4, 256, 129), (3, 3, 64, 1), (2, 7, 64, 128),
                                             (1, 1, 16, 257)])
def test_native_attention_matches_float64_sdpa(on_path, dtype, n_kv, group, hd, n):
    q, k, v = _qkv(n_kv, group, hd, n, dtype)
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=hd ** -0.5)
    out = attend(q, k, v, hd ** -0.5)
    assert float((out.double() - ref).abs().max()) < 2e-5


@needs_kernels
@pytest.mark.parametrize("on_path", PATHS, indirect=True)
def test_native_attention_reads_a_window_of_the_cache_and_the_same_with_any_thread_count(on_path):
    """Positions [lo, lo + n) of a cache with more slots; chunks combine in their order, so 1
    and 2 threads give the same bits."""
    q, k, v = _qkv(2, 3, 64, 1000, torch.float32, seed=3)
    lo, n = 37, 600
    ref = F.scaled_dot_product_attention(q.double(), k[:, :, lo:lo + n].double(), v[:, :, lo:lo + n].double(),
                                         scale=0.2)
    results = []
    for threads in (1, 2):
        native.set_threads(threads)
        out = torch.empty(1, 2, 3, 64)
        DecodeAttention.for_cache(k, v, 3, out)(q, 0.2, lo, n)
        results.append(out)
    assert float((results[0].double() - ref).abs().max()) < 2e-5
    assert torch.equal(results[0], results[1])


@needs_kernels
def test_shapes_the_library_does_not_take_are_left_to_torch():
    k = torch.zeros(1, 2, 10, 24)                  # head size not a multiple of 16
    assert DecodeAttention.for_cache(k, k, 2, torch.empty(1, 2, 2, 24)) is None
    k = torch.zeros(1, 2, 10, 64, dtype=torch.float16)
    assert DecodeAttention.for_cache(k, k, 2, torch.empty(1, 2, 2, 64)) is None
    k = torch.zeros(1, 2, 10, 64)
    assert DecodeAttention.for_cache(k, k, 2, torch.empty(1, 2, 2, 64, dtype=torch.bfloat16)) is None


def test_torch_runs_on_one_thread_inside_and_gets_its_threads_back():
    torch.set_num_threads(2)
    try:
        with cores.torch_on_one_thread():
            assert torch.get_num_threads() == 1
            with cores.torch_on_one_thread():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1         # (the outer one still holds)
        assert torch.get_num_threads() == 2
        with cores.torch_on_one_thread(active=False):
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), cores.torch_on_one_thread():
            raise RuntimeError("a failed pass")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(max(1, torch.get_num_threads()))


def test_another_thread_s_torch_work_keeps_its_threads():
    """(A thread already using torch: one that first calls torch meanwhile starts from torch's
    process-wide count, which is 1 then; see cores.py.)"""
    torch.set_num_threads(2)
    ready, inside, seen = threading.Event(), threading.Event(), []

    def other():
        seen.append(torch.get_num_threads())
        ready.set()
        inside.wait(10)
        seen.append(torch.get_num_threads())

    t = threading.Thread(target=other)
    t.start()
    ready.wait(10)
    with cores.torch_on_one_thread():
        inside.set()
        t.join(10)
    assert seen == [2, 2]


@needs_kernels
def test_a_model_on_the_kernels_runs_torch_on_one_thread(tmp_path, monkeypatch):
    path = write_tiny_model(tmp_path / "tiny.gguf", qtype="Q8_0")
    m = load_model(path, device="cpu")
    assert any(isinstance(mod, NativeLinear) for mod in m.net.modules())
    assert m.net.kernels_own_cores
    counts = []
    real = m.net._forward

    def spy(*args):
        counts.append(torch.get_num_threads())
        return real(*args)

    monkeypatch.setattr(m.net, "_forward", spy)
    torch.set_num_threads(2)
    from chatgui.common.prompt import PromptMessage
    from chatgui.engine import SamplingSettings

    g = m.generate([PromptMessage.user("hi")], SamplingSettings(temperature=0, max_new_tokens=3), ignore_eos=True)
    list(g)
    assert counts and set(counts) == {1}
    assert torch.get_num_threads() == 2


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_step_s_keys_and_values_are_stored_as_torch_stores_them(dtype):
    """cg_attend_new writes the new position into the cache (bfloat16: rounded to nearest, ties
    to even, as torch's copy_) and attends over it, in one call."""
    q, k, v = _qkv(2, 3, 64, 50, dtype, seed=5)
    new = torch.randn(2, 2, 64)
    new[0, 0, :4] = torch.tensor([1.00390625, 1.01171875, float("nan"), -0.0])    # bfloat16 ties, NaN
    expected_k, expected_v = k.clone(), v.clone()
    expected_k[0, :, 20], expected_v[0, :, 20] = new[0], new[1]
    out = torch.empty(1, 2, 3, 64)
    DecodeAttention.for_cache(k, v, 3, out, new=(new[0], new[1]))(q, 0.25, 0, 21, slot=20)
    bits = torch.int16 if dtype == torch.bfloat16 else torch.int32      # (bit for bit, but NaN's payload)
    assert torch.equal(k.isnan(), expected_k.isnan()) and int(k.isnan().sum()) == 1
    assert torch.equal(k.nan_to_num().view(bits), expected_k.nan_to_num().view(bits))
    assert torch.equal(v.view(bits), expected_v.view(bits))
    ref = attend(q, expected_k[:, :, :21].contiguous(), expected_v[:, :, :21].contiguous(), 0.25)
    assert torch.equal(out.isnan(), ref.isnan())
    assert torch.allclose(out.nan_to_num(), ref.nan_to_num())

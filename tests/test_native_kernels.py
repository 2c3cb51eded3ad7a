"""The native kernels (chatgui/engine/native/, issue 33): every GGUF format on random blocks
against a float64 product of quant.py's dequantized weights, in every path this CPU has, with
1 and 2 threads and odd shapes; the path forced by CHATGUI_KERNELS; the engine on the kernels and
on its PyTorch fallback."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from chatgui.engine import load_model, native, native_linear
from chatgui.engine.native_linear import NativeLinear, NativeProduct, NativeRows
from chatgui.engine.quant import dequantize
from quant_blocks import random_tensor
from tiny_gguf import write_tiny_model

needs_kernels = pytest.mark.skipif(not native.available(), reason=f"native kernels {native.why_not()}")
PATHS = [p for p in ("portable", "avx2", "avx512") if native.available() and native.supports(p)]
def activations(m: int, k: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g)
    return x * (1 + 20 * (torch.rand(m, k, generator=g) > 0.98))       # a few channels much larger


def check_product(y: torch.Tensor, x: torch.Tensor, w: torch.Tensor, block: int):
    """y against x @ w.T in float64, within what quantizing x to int8 per `block` values may
    move it: half a step (max |x| of the block / 127) per weight, plus float32 rounding; blocks
    of 32 keep their scale as float16 (as llama.cpp's Q8_0 activations), which moves each
    int8 value (up to 127) by up to 2^-11 of the step more."""
    ref = x.double() @ w.T
    m, k = x.shape
    step = x.double().abs().view(m, k // block, block).amax(-1) / 127
    per_step = 0.5 + (127 * 2.0 ** -11 if block == 32 else 0.0)
    bound = (w.abs()[None] * step.repeat_interleave(block, 1)[:, None, :] * per_step).sum(-1)
    bound += 1e-5 * (x.double().abs() @ w.abs().T) + 1e-6
    err = (y.double() - ref).abs()
    assert bool((err <= bound).all()), f"worst error {float((err / bound).max()):.2f} x the bound"
    # and not trivially: the typical error is far below the product's typical size
    if ref.numel() >= 5:
        assert float(err.pow(2).mean().sqrt()) < 0.1 * float(ref.pow(2).mean().sqrt())


@pytest.fixture
def path_and_threads(request):
    path, threads = request.param
    before = native.path_name(), native.library().cg_threads()
    native.select(path)
    native.set_threads(threads)
    yield path, threads
    native.select(None)
    native.set_threads(before[1])


@needs_kernels
@pytest.mark.parametrize("path_and_threads", [(p, t) for p in PATHS for t in (1, 2)], indirect=True,
                         ids=lambda pt: f"{pt[0]}-{pt[1]}threads")
@pytest.mark.parametrize("qtype", list(native.TYPES))
@pytest.mark.parametrize("rows,m", [(1, 1), (37, 1), (37, 5), (3, 9)])
def test_every_format_matches_the_float64_reference(path_and_threads, qtype, rows, m):
    k = 512 if native.BLOCK_ELEMS[qtype] == 256 else 576     # 32-wide: 2 groups of 8 blocks and 2 more
    t = random_tensor(qtype, rows, k, seed=rows * 10 + m)
    w = dequantize("random", t).double()
    x = activations(m, k, seed=m)
    check_product(NativeProduct([t])(x), x, w, native.BLOCK_ELEMS[qtype] if native.BLOCK_ELEMS[qtype] == 256 else 32)


@needs_kernels
@pytest.mark.skipif(len(PATHS) < 2, reason="this CPU has only the portable path")
@pytest.mark.parametrize("qtype", list(native.TYPES))
def test_every_path_computes_the_same_integer_sums(qtype):
    """Paths differ only in the order of float additions: far closer than the reference bound."""
    t = random_tensor(qtype, 67, 768 if native.BLOCK_ELEMS[qtype] == 256 else 96, seed=3)
    x = activations(6, t.shape[1], seed=4)
    w = dequantize("random", t).double()
    results = {}
    try:
        for p in PATHS:
            native.select(p)
            results[p] = NativeProduct([t])(x).double()
    finally:
        native.select(None)
    scale = x.double().abs() @ w.abs().T
    for p, y in results.items():
        assert bool(((y - results["portable"]).abs() <= 2e-5 * scale + 1e-6).all()), p


@needs_kernels
def test_fused_tensors_with_row_orders_write_side_by_side():
    q, k, v = random_tensor("Q4_K", 64, 256, 1), random_tensor("Q4_K", 32, 256, 2), random_tensor("Q6_K", 32, 256, 3)
    order_q, order_k = torch.randperm(64), torch.randperm(32)
    bias = torch.randn(128)
    fused = NativeLinear([q, k, v], bias, [order_q, order_k, None])
    x = activations(3, 256)
    parts = [NativeProduct([q])(x)[:, order_q], NativeProduct([k])(x)[:, order_k], NativeProduct([v])(x)]
    torch.testing.assert_close(fused(x), torch.cat(parts, dim=1) + bias, rtol=0, atol=1e-5)
    f, dtype = fused.kernel(with_bias=False)
    assert dtype is torch.float32
    torch.testing.assert_close(f(x), torch.cat(parts, dim=1), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="permutation"):
        NativeLinear([q], None, [torch.arange(1, 65)])


@needs_kernels
def test_nan_or_infinite_activations_give_nan_not_a_number():
    t = random_tensor("Q4_0", 8, 64)
    x = activations(2, 64)
    x[0, 5] = float("inf")
    y = NativeProduct([t])(x)
    assert bool(y[0].isnan().all()) and bool(y[1].isfinite().all())


@needs_kernels
def test_the_loader_uses_the_kernels_on_the_file_s_own_bytes(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_0")
    m = load_model(p, device="cpu")
    kinds = {type(mod) for mod in m.net.modules()}
    assert NativeLinear in kinds and NativeRows in kinds
    seg = m.net.layers[0].attn.wo.product._segs[0]
    assert seg.row_bytes == 64 // 32 * 18
    # the segment points into the file's mapping (a view of it), not a copy
    assert m.net.layers[0].attn.wo.product._keep[0].base is not None


def _run(code: str, kernels: str) -> dict:
    env = dict(os.environ, CHATGUI_KERNELS=kernels)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kernels", ["off", "auto", *PATHS])
def test_the_environment_variable_forces_a_path(kernels):
    if kernels == "auto" and not PATHS:      # (this process runs with the kernels off or unbuilt)
        pytest.skip("no path here to compare the child's choice with")
    code = ("import json; from chatgui.engine import native; "
            "print(json.dumps({'path': native.path_name(), 'line': native.status_line()}))")
    got = _run(code, kernels)
    if kernels == "off":
        assert got["path"] is None and "turned off" in got["line"] and "PyTorch" in got["line"]
    elif kernels == "auto":
        assert got["path"] == native.PATH_NAMES[native.PATHS[PATHS[-1]]]
    else:
        assert got["path"] == native.PATH_NAMES[native.PATHS[kernels]]


def test_an_unknown_value_or_missing_library_falls_back_in_plain_words(monkeypatch):
    got = _run("import json; from chatgui.engine import native; print(json.dumps(native.status_line()))", "fast")
    assert "not one of" in got and "PyTorch" in got
    code = ("import json; from chatgui.engine import native; native.library_file = lambda: None; "
            "print(json.dumps(native.status_line()))")
    got = _run(code, "auto")
    assert "not built (no C compiler" in got


# The engine's own parity tests on the PyTorch fallback (test_engine_model.py runs them on the
# kernels where they are built).
@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_parity_on_the_pytorch_fallback(tmp_path, monkeypatch, arch):
    import test_engine_model as tem

    monkeypatch.setattr(native_linear, "usable", lambda *args, **kwargs: False)
    tem.test_kv_cache_decode_equals_full_forward(tmp_path, arch)
    tem.test_fast_decode_step_tracks_the_batched_forward_with_compact_weights(tmp_path, arch)
    m = load_model(write_tiny_model(tmp_path / "q.gguf", arch=arch, qtype="Q4_0"), device="cpu")
    assert not any(isinstance(mod, (NativeLinear, NativeRows)) for mod in m.net.modules())


@needs_kernels
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0"])
def test_a_tiny_model_on_each_path_tracks_float32(tmp_path, path, qtype):
    try:
        native.select(path)
        p = write_tiny_model(tmp_path / "m.gguf", qtype=qtype)
        fast, exact = load_model(p, device="cpu"), load_model(p, device="cpu", precision="float32")
        ids = list(range(10, 60))
        a, b = fast.logprobs(ids), exact.logprobs(ids)
    finally:
        native.select(None)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
    assert float((a.exp() - b.exp()).abs().sum(-1).max()) < 0.1


@pytest.mark.parametrize("built", [True, False])
def test_model_options_say_in_one_line_when_the_kernels_are_missing(qtbot, monkeypatch, built):
    from chatgui.engine import native as native_mod
    from chatgui.ui.settings.panel import SettingsPanel

    monkeypatch.setattr(native_mod, "library_file", (lambda: "lib.so") if built else (lambda: None))
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    note = getattr(panel, "kernels_note", None)
    if built:
        assert note is None
    else:
        assert "no C compiler" in note.text() and "slower" in note.text()


@needs_kernels
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("qtype", list(native.TYPES))
def test_a_row_s_result_is_bit_identical_in_any_batch_and_thread_count(path, qtype):
    """Each product row is one dot product in a fixed order (threads split rows, never a sum; a
    kernel computes each activation row with the same instructions however many rows it takes
    at once, up to 8), so a position gets the same bits computed alone (decoding) or among others
    (a prefill chunk): the ground for replies that do not depend on what the cache held (issue
    33). Row lengths with a last partial group of blocks (576 = 2 x 256 + 64), 19 rows (8 + 8 + 3)."""
    k = 768 if native.BLOCK_ELEMS[qtype] == 256 else 576
    t = random_tensor(qtype, 97, k, seed=7)
    x = activations(19, k, seed=8)
    p = NativeProduct([t])
    threads = native.library().cg_threads()
    try:
        native.select(path)
        native.set_threads(2)
        together = p(x)
        native.set_threads(1)
        alone = torch.cat([p(x[i:i + 1]) for i in range(len(x))])
        in_threes = torch.cat([p(x[i:i + 3]) for i in range(0, len(x), 3)])
        in_fives = torch.cat([p(x[i:i + 5]) for i in range(0, len(x), 5)])
    finally:
        native.select(None)
        native.set_threads(threads)
    assert torch.equal(together, alone) and torch.equal(together, in_threes) and torch.equal(together, in_fives)


@needs_kernels
@pytest.mark.parametrize("threads", [1, 2])
def test_a_bound_product_gives_the_plain_product_whatever_comes_next(threads):
    """NativeProduct.bound: alpha and bias applied, or the result added to `out`, in one library
    call; told the next product, the pool's idle worker reads that one's first bytes meanwhile
    (warm_next), which must change no result, also when calls come faster than the warming
    finishes (a 9 MB next product: more than it reads) and it has to stop part-way."""
    big = NativeProduct([random_tensor("Q8_0", 8192, 1024, seed=3)])
    t = random_tensor("Q4_K", 37, 512, seed=4)
    p = NativeProduct([t])
    x = activations(1, 512, seed=5)
    alpha, bias = torch.tensor([0.5]), torch.randn(37)
    before = native.library().cg_threads()
    native.set_threads(threads)
    try:
        plain = p(x)
        out = torch.zeros(1, 37)
        scaled = p.bound(x, out, alpha, bias, next_product=big)
        acc_out = torch.ones(1, 37)
        added = p.bound(x, acc_out, accumulate=True, next_product=big)
        for _ in range(50):
            scaled()
            assert torch.allclose(out, 0.5 * plain + bias, rtol=1e-6, atol=1e-6)
        acc_out.fill_(1.0)
        added()
        assert torch.allclose(acc_out, plain + 1.0, rtol=1e-6, atol=1e-6)
    finally:
        native.set_threads(before)

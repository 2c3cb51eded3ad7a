"""Compact weight forms per GGUF type, the on-disk weight cache, and refusing what cannot load."""
from __future__ import annotations

import threading

import pytest
import torch

from chatgui.engine import ModelLoadError, load_model
from chatgui.engine import native_linear, qlinear, weight_cache
from tiny_gguf import write_tiny_model


@pytest.fixture(autouse=True)
def pytorch_forms(monkeypatch):
    """These tests are about the PyTorch forms (qlinear.py) and their cache: the native kernels,
    which the CPU uses instead where they are built, are turned off here (tests/test_native_kernels.py
    tests those, and runs the engine's parity tests on both)."""
    monkeypatch.setattr(native_linear, "usable", lambda *args, **kwargs: False)


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
    # (the last term: adding the bias rounds in float32 either way, a step of ~6e-8 at |bias| ~ 1, which
    # outweighs the product itself at magnitude 1e-7: that test flaked 1 run in ~5)
    assert float((got - want).abs().max()) <= 2e-3 * float((x.abs() @ w.abs().T).max()) + 1e-3 * magnitude \
        + 2 * torch.finfo(torch.float32).eps * float(bias.abs().max())


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


# -- large projections in FBGEMM's int8 GEMM ------------------------------------------------------
needs_int8_gemm = pytest.mark.skipif(not qlinear.int8_gemm_works(), reason="this torch build has no FBGEMM int8 GEMM")


@needs_int8_gemm
@pytest.mark.parametrize("rows,magnitude", [(1, 1.0), (5, 1.0), (1, 1e-6), (3, 1e5)])
def test_int8_gemm_gives_the_input_exactly_to_15_bits(rows, magnitude):
    """FBGEMM alone quantizes the whole input to 7 bits; the two pinned rows carry it to ~1/240 of
    a 63rd of its largest value, so the product is the int8 weights' own, whatever the scale and
    with an outlier 80x the rest (which alone would ruin 7 bits)."""
    torch.manual_seed(0)
    w = torch.randn(200, 96)
    q, scale = qlinear.int8_rows(w)
    bias = torch.randn(200)
    mod = qlinear.Int8GemmLinear(q, scale, bias)
    mod.pack()
    x = torch.randn(rows, 96) * magnitude
    x[0, 3] = 80 * magnitude
    exact = x.double() @ (q.double() * scale.double()[:, None]).T + bias.double()
    got = mod(x)
    assert got.dtype == torch.float32 and got.shape == (rows, 200)
    # Worst case: every element off by half the second row's step, all in the same direction.
    step = 80 * magnitude / 63 / qlinear.Int8GemmLinear.R
    bound = 0.5 * step * float((q.abs().double() * scale.double()[:, None]).sum(1).max())
    error = float((got.double() - exact).abs().max())
    assert error <= bound + 1e-5 * magnitude
    # FBGEMM's own 7-bit input is far worse: the test tells them apart
    one_pass = torch.ops.quantized.linear_dynamic(torch.cat([x, torch.zeros(rows, 8)], 1), mod.packed, True) + bias
    assert float((one_pass.double() - exact).abs().max()) > 20 * error
    assert torch.equal(mod(torch.zeros(1, 96)), bias[None])      # a zero input is not a division by zero
    assert mod(torch.zeros(0, 96)).shape == (0, 200)
    x[0, 5] = float("nan")                                       # overflowed activations: said in words
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        mod(x)


@needs_int8_gemm
def test_int8_gemm_answers_before_it_is_packed():
    torch.manual_seed(1)
    q, scale = qlinear.int8_rows(torch.randn(64, 128))
    mod = qlinear.Int8GemmLinear(q, scale, None)
    x = torch.randn(2, 128)
    before = mod(x)                      # the interim int8 kernel on the same weights
    mod.pack()
    after = mod(x)
    assert mod.weight is None
    assert float((before - after).abs().max()) <= 0.02 * float(after.abs().max())


def test_int8_rows_outliers_keep_the_largest_weights_exact():
    torch.manual_seed(2)
    w = torch.randn(50, 300)
    w[:, 7] = 40.0                                  # one large weight per row
    q, scale, cols, vals = qlinear.int8_rows_outliers(w, 2)
    assert q.dtype == torch.int8 and cols.shape == vals.shape == (50, 2)
    assert torch.equal(cols, cols.sort(dim=1).values) and bool((cols == 7).any(dim=1).all())
    back = q.double() * scale.double()[:, None]
    back.scatter_add_(1, cols.long(), vals.double())
    assert float((back - w.double()).abs().max()) <= float(scale.max()) / 2 + 1e-6
    plain_q, plain_scale = qlinear.int8_rows(w)
    assert float(scale.max()) < float(plain_scale.min()) / 4      # the step no longer set by the outlier


@pytest.mark.parametrize("size", [0, 300, 250, 999])
def test_the_segmented_checksum_is_the_same_streamed_and_in_parallel(tmp_path, monkeypatch, size):
    """The cache's checksum is written streamed (in pieces of any size) and read back by
    segments on every core: both must give the same value, segment boundaries included."""
    monkeypatch.setattr(weight_cache, "_SEGMENT", 100)
    data = bytes(range(256)) * 4
    path = tmp_path / "payload"
    path.write_bytes(b"head" + data[:size] + b"tail")
    streamed = weight_cache._SegmentedHash()
    for piece in (data[:size][:37], data[:size][37:180], data[:size][180:]):
        streamed.update(piece)
    assert weight_cache._payload_digest(path, 4, size) == streamed.hexdigest()
    other = bytearray(data[:size])
    if size:
        other[size // 2] ^= 1
        changed = weight_cache._SegmentedHash()
        changed.update(bytes(other))
        assert changed.hexdigest() != streamed.hexdigest()


@needs_int8_gemm
def test_int8_gemm_adds_its_outliers_in_every_path():
    torch.manual_seed(3)
    w = torch.randn(40, 256)
    w[::3, 11] *= 50
    q, scale, cols, vals = qlinear.int8_rows_outliers(w, 1)
    bias = torch.randn(40)
    exact_w = q.double() * scale.double()[:, None]
    exact_w.scatter_add_(1, cols.long(), vals.double())
    x = torch.randn(4, 256)
    expected = x.double() @ exact_w.T + bias.double()
    mod = qlinear.Int8GemmLinear(q, scale, bias, outliers=(cols, vals))
    tol = 0.02 * float(expected.abs().max())
    assert float((mod(x).double() - expected).abs().max()) < tol          # before packing (interim kernel)
    mod.pack()
    assert float((mod(x).double() - expected).abs().max()) < 1e-3 * float(expected.abs().max())
    one, _ = mod.kernel()                                                   # the decode step's path
    assert float((one(x[:1]).double() - expected[:1]).abs().max()) < 1e-3 * float(expected.abs().max())


@needs_int8_gemm
@pytest.mark.parametrize("outliers", [False, True])
def test_large_projections_use_the_int8_gemm_and_track_float32(tmp_path, monkeypatch, outliers):
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN", 0)        # the tiny model's projections count as large
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN_LONG", 0)
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN_ROW", 0)
    if outliers:                                            # its down projection's rows count as long
        monkeypatch.setattr(qlinear, "OUTLIER_MIN_ROW", 1)
        monkeypatch.setattr(qlinear, "OUTLIER_EVERY", 16)
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_0")
    fast, exact = load_model(p, device="cpu"), load_model(p, device="cpu", precision="float32")
    for layer in fast.net.layers:
        assert [type(mod) for mod in (layer.attn.wqkv, layer.attn.wo, layer.ffn.w13, layer.ffn.w2)] == \
            [qlinear.Int8GemmLinear] * 4
        assert layer.ffn.w2.outliers_per_row == (8 if outliers else 0)
    ids = list(range(10, 60))
    a, b = fast.logprobs(ids), exact.logprobs(ids)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
    assert float((a.exp() - b.exp()).abs().sum(-1).max()) < 0.1
    fast.net.finish_loading()
    assert all(mod.packed is not None for mod in _linears(fast) if type(mod) is qlinear.Int8GemmLinear)
    assert fast.net.pending is None
    # the decode step (rebuilt with the packed kernels) computes what forward computes
    fast._cache_ids = []
    fast.net(torch.tensor([ids[:-1]]), 0)
    step = fast.net(torch.tensor([[ids[-1]]]), len(ids) - 1)[0, -1]
    full = fast.net(torch.tensor([ids]), 0)[0, -1]
    best = full.topk(10).indices      # (the rest carry the output head's ranker's error)
    assert torch.allclose(step[best], full[best], atol=2e-2, rtol=0)


@pytest.mark.skipif(not qlinear.fp16_gemm_works(), reason="this torch build has no FBGEMM fp16 GEMM")
def test_a_small_4bit_down_projection_with_long_rows_is_float16(tmp_path, monkeypatch):
    """Too small for the int8 GEMM, its long rows make the int4 kernel slow: float16, exact to
    float16's rounding. Other projections of the same type stay int4; the memory estimate counts
    the float16 bytes."""
    from chatgui.engine import loader
    from chatgui.engine.gguf_file import GGUFFile

    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_0")
    gf = GGUFFile(p)
    before = loader.estimated_memory_bytes(gf, loader.read_model_args(gf), 256)
    monkeypatch.setattr(qlinear, "OUTLIER_MIN_ROW", 1)     # the tiny model's down rows count as long
    fast, exact = load_model(p, device="cpu"), load_model(p, device="cpu", precision="float32")
    fast.net.finish_loading()
    _wait_for_cache_writes()
    again = load_model(p, device="cpu")                      # the float16 form, read from the cache
    again.net.finish_loading()
    for m in (fast, again):
        for layer in m.net.layers:
            assert [type(mod) for mod in (layer.attn.wqkv, layer.attn.wo, layer.ffn.w13, layer.ffn.w2)] == \
                [qlinear.Int4Linear] * 3 + [qlinear.Fp16Linear]
    assert torch.equal(again.logprobs(list(range(10, 40))), fast.logprobs(list(range(10, 40))))
    w2 = fast.net.layers[0].ffn.w2
    assert not qlinear.uses_fp16_for_int4(["Q4_0"], w2.in_features, w2.out_features, "cpu", down=False)
    assert not qlinear.uses_fp16_for_int4(["Q5_0"], w2.in_features, w2.out_features, "cpu", down=True)
    monkeypatch.setattr(qlinear, "FP16_FOR_INT4_MAX", w2.in_features * w2.out_features - 1)
    assert not qlinear.uses_fp16_for_int4(["Q4_0"], w2.in_features, w2.out_features, "cpu", down=True)
    monkeypatch.setattr(qlinear, "FP16_FOR_INT4_MAX", 5_000_000)
    sizes = [layer.ffn.w2.in_features * layer.ffn.w2.out_features for layer in fast.net.layers]
    after = loader.estimated_memory_bytes(gf, loader.read_model_args(gf), 256)
    assert after - before == sum(2 * n - n * 5 // 8 for n in sizes)       # 2 bytes a weight, not 5/8
    ids = list(range(10, 60))
    a, b = fast.logprobs(ids), exact.logprobs(ids)
    assert float((a.argmax(-1) == b.argmax(-1)).float().mean()) >= 0.9
    assert float((a.exp() - b.exp()).abs().sum(-1).max()) < 0.1
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN", 0)        # large enough for the int8 GEMM: int8 there
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN_LONG", 0)
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN_ROW", 0)
    if qlinear.int8_gemm_works():
        assert not qlinear.uses_fp16_for_int4(["Q4_0"], w2.in_features, w2.out_features, "cpu", down=True)


@needs_int8_gemm
def test_a_cache_made_for_other_forms_is_remade_not_misread(tmp_path, monkeypatch):
    """A module whose cached tensors belong to another form is converted again; the cache written
    then is whole (the new tensors were not given back to the OS as if mapped: that zeroed them)."""
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_0")
    load_model(p, device="cpu")                                # int4 forms cached
    _wait_for_cache_writes()
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN", 0)
    monkeypatch.setattr(qlinear, "INT8_GEMM_MIN_ROW", 0)
    m = load_model(p, device="cpu")                            # now int8: remade, cache rewritten
    m.net.finish_loading()
    _wait_for_cache_writes()
    lp = m.logprobs(list(range(10, 40)))
    again = load_model(p, device="cpu")
    assert weight_cache.WeightCache(p, torch.device("cpu"), "torch.bfloat16").load() is not None
    again.net.finish_loading()
    assert torch.equal(again.logprobs(list(range(10, 40))), lp)


def _spm_metadata() -> dict:
    """A small SentencePiece-style vocabulary: byte pieces plus a few merges ranked by score."""
    pieces = ["\u2581", "\u2581h", "\u2581he", "ll", "\u2581hell", "o", "\u2581hello", "h", "e", "l"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + pieces
    return {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": [2, 3, 3] + [6] * 256 + [1] * len(pieces),
            "tokenizer.ggml.scores": [0.0] * 259 + [-float(i) for i in range(len(pieces))],
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_user_defined_tokens_are_text_and_control_tokens_are_not(kind):
    """As llama.cpp: a user-defined token (Gemma 3's newlines and runs of spaces, Qwen's
    <tool_call>) is matched whole in text and stays in a reply's text; a control token is matched
    whole too but left out of it. (Treated as special, Gemma 3's replies lost every newline.)"""
    from chatgui.engine import tokenizer as tokenizer_mod
    from tiny_gguf import vocabulary

    if kind == "llama":
        meta = _spm_metadata()
        user, control = "\n\n", "<start_of_turn>"
        meta["tokenizer.ggml.tokens"] = meta["tokenizer.ggml.tokens"] + [user, control]
        meta["tokenizer.ggml.token_type"] = meta["tokenizer.ggml.token_type"] + [4, 3]
        meta["tokenizer.ggml.scores"] = meta["tokenizer.ggml.scores"] + [0.0, 0.0]
        meta["tokenizer.ggml.add_bos_token"] = False
    else:
        tokens, types, merges = vocabulary()
        user, control = "<tool_call>", tokens[1]              # <|im_start|>, a control token
        meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens + [user],
                "tokenizer.ggml.token_type": types + [4], "tokenizer.ggml.merges": merges,
                "tokenizer.ggml.pre": "qwen2"}
    info = tokenizer_mod.build_tokenizer(meta, "m.gguf")
    tok = info.tokenizer
    user_id, control_id = meta["tokenizer.ggml.tokens"].index(user), meta["tokenizer.ggml.tokens"].index(control)
    ids = tok.encode(f"{control}hello{user}hello", add_special_tokens=False).ids
    assert ids.count(user_id) == 1 and ids.count(control_id) == 1
    assert control_id in info.special_ids and user_id not in info.special_ids
    # an end-of-turn token marked user-defined is control all the same, and ends a reply
    eot_meta = dict(meta, **{"tokenizer.ggml.tokens": meta["tokenizer.ggml.tokens"] + ["<end_of_turn>"],
                              "tokenizer.ggml.token_type": meta["tokenizer.ggml.token_type"] + [4]})
    if kind == "llama":
        eot_meta["tokenizer.ggml.scores"] = meta["tokenizer.ggml.scores"] + [0.0]
    eot = tokenizer_mod.build_tokenizer(eot_meta, "m.gguf")
    eot_id = len(eot_meta["tokenizer.ggml.tokens"]) - 1
    assert eot_id in eot.special_ids and eot_id in eot.stop_ids
    assert eot.tokenizer.decode([eot_id], skip_special_tokens=True) == ""
    text = tok.decode(ids, skip_special_tokens=True)
    assert user in text and control not in text and text.count("hello") == 2

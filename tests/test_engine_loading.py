"""GGUF loading: every quant type against gguf.quants, model arguments, architectures, bad files."""
from __future__ import annotations

import time

import gguf
import numpy as np
import pytest
import torch

from chatgui.engine import ModelLoadError, load_model
from chatgui.engine.gguf_file import GGUFFile
from chatgui.engine.quant import dequantize
from tiny_gguf import write_tiny_model

QTYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def _raw_blocks(qtype: gguf.GGMLQuantizationType, rows: int, cols: int, rng) -> np.ndarray:
    """Valid-looking random blocks: random bytes with every float16 scale field set to a small
    finite value, so the comparison is not drowned in NaNs."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    scale = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    offsets = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q2_K": [size - 4, size - 2],
               "Q3_K": [size - 2], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [size - 2]}[qtype.name]
    for o in offsets:
        raw[:, :, o:o + 2] = scale
    return raw.reshape(rows, -1)


def _one_tensor_file(path, data: np.ndarray, raw_dtype):
    """A GGUF file holding one tensor "x"; returns its TensorInfo as read back."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("x", data, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return GGUFFile(path).tensor("x")


@pytest.mark.parametrize("qtype", QTYPES)
def test_dequantize_matches_gguf(tmp_path, qtype):
    rng = np.random.default_rng(1)
    qt = gguf.GGMLQuantizationType[qtype]
    rows, cols = 8, 512
    if qtype in ("F32", "F16"):
        data = rng.standard_normal((rows, cols)).astype(np.float32 if qtype == "F32" else np.float16)
    elif qtype == "BF16":
        data = gguf.quants.quantize(rng.standard_normal((rows, cols)).astype(np.float32), qt)
    else:
        data = _raw_blocks(qt, rows, cols, rng)
    t = _one_tensor_file(tmp_path / "t.gguf", data, None if qtype in ("F32", "F16") else qt)
    assert t.shape == (rows, cols) and t.qtype_name == qtype
    ours = dequantize(tmp_path, t)
    assert ours.dtype == torch.float32 and tuple(ours.shape) == (rows, cols)
    ref = gguf.quants.dequantize(np.asarray(data), qt).astype(np.float32).reshape(rows, cols)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-6)
    assert np.isfinite(ref).all()


@pytest.mark.parametrize("qtype", QTYPES)
def test_dequantize_rows_reads_the_asked_rows(tmp_path, qtype):
    """Embedding lookups and the head's refinement read single rows from the file's blocks."""
    from chatgui.engine.quant import dequantize_row_chunks, dequantize_rows

    rng = np.random.default_rng(4)
    qt = gguf.GGMLQuantizationType[qtype]
    if qtype in ("F32", "F16", "BF16"):
        data = rng.standard_normal((12, 256)).astype(np.float32)
        data = data if qtype == "F32" else data.astype(np.float16) if qtype == "F16" else gguf.quants.quantize(data, qt)
    else:
        data = _raw_blocks(qt, 12, 256, rng)
    t = _one_tensor_file(tmp_path / "t.gguf", data, None if qtype in ("F32", "F16") else qt)
    full = dequantize(tmp_path, t)
    ids = torch.tensor([[11, 0, 5], [5, 5, 2]])
    assert torch.equal(dequantize_rows(tmp_path, t, ids), full[ids])
    assert torch.equal(torch.cat([c for _, c in dequantize_row_chunks(tmp_path, t, 5)]), full)
    # into one reused buffer: each chunk is valid until the next is asked for
    assert torch.equal(torch.cat([c.clone() for _, c in dequantize_row_chunks(tmp_path, t, 5, reuse=True)]), full)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q6_K", "Q3_K"])
def test_chunked_converters_give_what_the_whole_tensor_gives(tmp_path, qtype):
    """The loader converts a chunk of rows at a time into one reused buffer (int8_rows_of,
    fp16_rows_of): the same values as converting the dequantized tensor at once, whatever the
    chunk size (a last, shorter chunk included)."""
    from chatgui.engine import qlinear

    rng = np.random.default_rng(7)
    qt = gguf.GGMLQuantizationType[qtype]
    t = _one_tensor_file(tmp_path / "t.gguf", _raw_blocks(qt, 13, 4096, rng), qt)
    full = dequantize(tmp_path, t)
    for rows in (1, 5, 13):
        q, scale = qlinear.int8_rows_of(tmp_path, t, rows)
        want_q, want_scale = qlinear.int8_rows(full)
        assert torch.equal(q, want_q) and torch.equal(scale, want_scale)
        got = qlinear.int8_rows_of(tmp_path, t, rows, outliers=4)
        for a, b in zip(got, qlinear.int8_rows_outliers(full, 4)):
            assert torch.equal(a, b)
        assert torch.equal(qlinear.fp16_rows_of(tmp_path, t, rows), qlinear.fp16_parts(full)[0])
    assert qlinear.int8_rows_of(tmp_path, t, 5)[0].abs().max() == 127


def test_fp16_rows_of_leaves_unusual_magnitudes_to_fp16_parts(tmp_path):
    from chatgui.engine import qlinear

    for magnitude, exact in ((1e-7, False), (0.5, True), (1e5, False), (float("nan"), False), (float("inf"), False)):
        finite = np.isfinite(magnitude)
        data = np.ones((4, 32), dtype=np.float32) * (magnitude if finite else 0.5)
        if not finite:
            data[3, 7] = magnitude                # a damaged weight, in the last chunk
        t = _one_tensor_file(tmp_path / f"{magnitude}.gguf", data, None)
        got = qlinear.fp16_rows_of(tmp_path, t, 3)
        assert (got is not None) == exact
        w16, e = qlinear.fp16_parts(dequantize(tmp_path, t))      # the fallback (a damaged tensor: kept as it is)
        if exact:
            assert torch.equal(got, w16)
        if not finite:
            assert e == 0 and not torch.isfinite(w16[3, 7])


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_1"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma3"])
def test_tiny_models_load_and_run(tmp_path, arch, qtype):
    p = write_tiny_model(tmp_path / "m.gguf", arch=arch, qtype=qtype)
    m = load_model(p, device="cpu")
    a = m.args
    assert (a.arch, a.dim, a.n_layers, a.n_heads, a.n_kv_heads, a.head_dim, a.hidden_dim) == (arch, 64, 2, 4, 2, 16, 128)
    assert a.rope_interleaved == (arch == "llama")
    assert a.qkv_bias == (arch == "qwen2") and a.qk_norm == (arch in ("qwen3", "gemma3"))
    lp = m.logprobs(m.tokenize("hello there"))
    assert lp.shape == (len(m.tokenize("hello there")), len(m.tok.tokenizer.get_vocab()))
    assert torch.isfinite(lp).all()


def test_real_model_args(real_model):
    a = real_model.args
    assert (a.arch, a.dim, a.n_layers, a.n_heads, a.n_kv_heads, a.head_dim, a.hidden_dim, a.vocab_size) == \
        ("llama", 576, 30, 9, 3, 64, 1536, 49152)
    assert a.rope_base == 100000.0 and a.tied_embeddings and a.train_context == 8192


# -- bad files ------------------------------------------------------------------------------------
def _expect_error(path, *words):
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as ei:
        load_model(path, device="cpu")
    assert time.perf_counter() - t0 < 5, "a bad file must fail fast"
    msg = str(ei.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_empty_and_foreign_files(tmp_path):
    _expect_error(tmp_path / "nope.gguf", "not found")
    (tmp_path / "empty.gguf").write_bytes(b"")
    _expect_error(tmp_path / "empty.gguf", "empty")
    (tmp_path / "foreign.gguf").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    _expect_error(tmp_path / "foreign.gguf", "not a GGUF file")
    (tmp_path / "dir.gguf").mkdir()
    _expect_error(tmp_path / "dir.gguf", "folder")


def test_truncated_at_many_offsets(tmp_path, tiny_model_path):
    data = tiny_model_path.read_bytes()
    offsets = sorted(set([4, 8, 16, 23, 24, 30, 100, 1000, 5000] + list(range(0, len(data), len(data) // 40))[1:]
                         + [len(data) - 1]))
    for off in offsets:
        p = tmp_path / f"cut{off}.gguf"
        p.write_bytes(data[:off])
        _expect_error(p)


def test_unknown_architecture(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", arch="mamba")
    _expect_error(p, "architecture 'mamba' is not supported")


def test_unsupported_quant_type_is_named(tmp_path, monkeypatch):
    import chatgui.engine.quant as quant

    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q4_1")
    monkeypatch.setattr(quant, "SUPPORTED", quant.SUPPORTED - {"Q4_1"})
    _expect_error(p, "Q4_1", "not supported")


def _patch_u64_after_key(data: bytes, key: str, value: int) -> bytes:
    """Overwrite the integer value stored right after a metadata key (type id, then value)."""
    k = key.encode()
    i = data.index(k) + len(k)
    vtype = int.from_bytes(data[i:i + 4], "little")
    size = {4: 4, 5: 4, 10: 8, 11: 8}[vtype]
    return data[:i + 4] + value.to_bytes(size, "little") + data[i + 4 + size:]


@pytest.mark.parametrize("key,value,words", [
    ("llama.block_count", 1_000_000_000, ["block_count", "out of range"]),
    ("llama.context_length", 10**12 % (1 << 32), []),
    ("llama.embedding_length", 4_000_000_000, ["embedding_length", "out of range"]),
    ("llama.attention.head_count", 3, ["head"]),
])
def test_absurd_metadata(tmp_path, tiny_model_path, key, value, words):
    p = tmp_path / "bad.gguf"
    p.write_bytes(_patch_u64_after_key(tiny_model_path.read_bytes(), key, value))
    if key == "llama.context_length":
        m = load_model(p, device="cpu")   # a huge context is capped, never allocated
        assert m.context_length <= 4096
    else:
        _expect_error(p, *words)


def test_absurd_vocab_size_and_counts(tmp_path, tiny_model_path):
    data = tiny_model_path.read_bytes()
    p = tmp_path / "vocab.gguf"
    p.write_bytes(_patch_u64_after_key(data, "llama.vocab_size", 4_000_000_000))
    _expect_error(p, "vocab_size")
    # An array claiming 10^10 strings: refused before any allocation.
    k = b"tokenizer.ggml.tokens"
    i = data.index(k) + len(k) + 4 + 4   # value type ARRAY, element type STRING, then the count
    p2 = tmp_path / "tokens.gguf"
    p2.write_bytes(data[:i] + (10**10).to_bytes(8, "little") + data[i + 8:])
    _expect_error(p2, "truncated or corrupt")
    # A header claiming 2^40 tensors.
    p3 = tmp_path / "count.gguf"
    p3.write_bytes(data[:8] + (1 << 40).to_bytes(8, "little") + data[16:])
    _expect_error(p3, "absurd")


def test_bogus_tensor_shape_and_offset(tmp_path, tiny_model_path):
    data = tiny_model_path.read_bytes()
    name = b"blk.0.attn_q.weight"
    i = data.index(name) + len(name)
    # n_dims (u32), then ne[0], ne[1] (u64 each), type (u32), offset (u64)
    shape_bad = data[:i + 4] + (96).to_bytes(8, "little") + data[i + 12:]
    (tmp_path / "shape.gguf").write_bytes(shape_bad)
    _expect_error(tmp_path / "shape.gguf")
    off = i + 4 + 16 + 4
    offset_bad = data[:off] + (1 << 50).to_bytes(8, "little") + data[off + 8:]
    (tmp_path / "offset.gguf").write_bytes(offset_bad)
    _expect_error(tmp_path / "offset.gguf", "beyond the end of the file")


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q4_K"])
def test_int4_repacking_is_exact(tmp_path, qtype):
    """4-bit GGUF blocks map onto torch's int4 groups without changing any weight."""
    from chatgui.engine.qlinear import int4_parts

    rng = np.random.default_rng(2)
    qt = gguf.GGMLQuantizationType[qtype]
    rows, cols = 16, 512
    data = _raw_blocks(qt, rows, cols, rng)
    t = _one_tensor_file(tmp_path / "t.gguf", data, qt)
    q, scale, zero = int4_parts(t)
    assert q.min() >= 0 and q.max() <= 15
    ours = (q.float() - 8) * scale.repeat_interleave(32, 1) + zero.repeat_interleave(32, 1)
    ref = gguf.quants.dequantize(np.asarray(data), qt).reshape(rows, cols)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_header_parser_reads_what_gguf_reader_reads(tmp_path):
    """Our header parser (fast string arrays) against the gguf package's reader, field by field."""
    from chatgui.engine.gguf_header import parse_header

    path = write_tiny_model(tmp_path / "m.gguf", arch="qwen2", qtype="Q4_1")
    reader = gguf.GGUFReader(str(path))
    with open(path, "rb") as f:
        ours = parse_header(memoryview(f.read()))
    assert set(ours.metadata) == {k for k in reader.fields if not k.startswith("GGUF.")}
    for key, value in ours.metadata.items():
        theirs = reader.fields[key].contents()
        if isinstance(value, float):
            assert value == pytest.approx(theirs)
        else:
            assert value == theirs, key
    assert [(t[0], t[1], t[2]) for t in ours.tensors] == \
        [(t.name, tuple(int(d) for d in t.shape), int(t.tensor_type)) for t in reader.tensors]
    assert ours.data_offset == reader.data_offset


def test_string_arrays_are_decoded_when_read(tmp_path):
    """A vocabulary is a StringArray: each string decoded when read (by index, from the end,
    in slices, whole), the same strings as the gguf package's reader gives, UTF-8 included."""
    from chatgui.engine.gguf_header import StringArray, parse_header

    path = write_tiny_model(tmp_path / "m.gguf", arch="qwen2", qtype="Q4_1")
    theirs = gguf.GGUFReader(str(path)).fields["tokenizer.ggml.tokens"].contents()
    with open(path, "rb") as f:
        tokens = parse_header(memoryview(f.read())).metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, StringArray) and len(tokens) == len(theirs) > 200
    assert any(ord(c) > 127 for t in theirs for c in t)         # multi-byte strings among them
    assert tokens[0] == theirs[0] and tokens[-1] == theirs[-1] and tokens[len(theirs) - 1] == theirs[-1]
    assert tokens[5:9] == theirs[5:9] and tokens[::97] == theirs[::97]
    for bad in (len(theirs), -len(theirs) - 1):
        with pytest.raises(IndexError):
            tokens[bad]
    assert tokens.tolist() == theirs and list(tokens) == theirs and tokens[3] == theirs[3]


def test_malloc_heaps_are_shared_unless_the_user_set_the_allocator(monkeypatch):
    import ctypes

    from chatgui.common import malloc

    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    malloc.share_malloc_arenas()
    assert calls == [(-8, 2)]          # M_ARENA_MAX
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    malloc.share_malloc_arenas()
    assert calls == [(-8, 2)]

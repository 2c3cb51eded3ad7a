"""GGUF loading: every quant type against gguf.quants, model arguments, architectures, bad files."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from chatgui.common.prompt import PromptMessage
from chatgui.common.types import SamplingSettings
from chatgui.engine import ModelLoadError, load_model
from chatgui.engine.errors import ModelFileChanged
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



def test_string_arrays_find_entries_without_decoding_them():
    """indices_of finds whole entries in the raw bytes (the last of duplicates, as a dict built
    in order keeps; never a text inside or across entries), the same before and after tolist()."""
    import struct

    from chatgui.engine.gguf_header import _Cursor

    texts = ["<|end|>", "ab", "<|return|>x", "b", "ü<|call|>", "<|call|>", "a", "<|end|>", "é"]
    raw = b"".join(struct.pack("<Q", len(t.encode())) + t.encode() for t in texts)
    arr = _Cursor(memoryview(raw)).strings(len(texts), "test")
    wanted = ["<|end|>", "<|call|>", "<|return|>", "a", "b", "ab", "é", "bb", "\x00"]
    expected = {"<|end|>": 7, "<|call|>": 5, "a": 6, "b": 3, "ab": 1, "é": 8}
    assert arr.indices_of(wanted) == expected and arr._all is None       # nothing decoded
    assert arr.tolist() == texts and arr.indices_of(wanted) == expected
    arr.release()
    assert arr._all is None and arr[4] == "ü<|call|>" and arr.indices_of(wanted) == expected


def test_a_built_tokenizer_leaves_the_vocabulary_undecoded(tmp_path):
    """The decoded token and merge lists a gpt2 tokenizer is built from are not kept beside it
    (Qwen2.5's 152k tokens and 151k merges: ~31 MB for as long as the model was loaded)."""
    from chatgui.engine.gguf_header import parse_header
    from chatgui.engine.tokenizer import build_tokenizer

    path = write_tiny_model(tmp_path / "m.gguf", arch="qwen2", qtype="Q4_1")
    with open(path, "rb") as f:
        meta = parse_header(memoryview(f.read())).metadata
    info = build_tokenizer(meta, path)
    tokens, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"]
    assert tokens._all is None and merges._all is None
    ids = info.tokenizer.encode("hello world").ids
    assert ids and info.tokenizer.decode(ids) == "hello world" and tokens[ids[0]] == info.tokenizer.id_to_token(ids[0])

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


# ---- hostile files (issue 29, cases 7 and 12) --------------------------------------------------

def _header_only(kv: list[tuple[str, int, bytes]]) -> bytes:
    """A GGUF header with these (key, value type, value bytes) and no tensors."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, vtype, payload in kv:
        k = key.encode()
        out += struct.pack("<Q", len(k)) + k + struct.pack("<I", vtype) + payload
    return out


def test_deeply_nested_metadata_arrays_are_a_load_error(tmp_path):
    """100,000 arrays inside each other (1.2 MB): a RecursionError before, a plain refusal now."""
    array = int(gguf.GGUFValueType.ARRAY)
    nested = struct.pack("<IQ", array, 1) * 100_000 + struct.pack("<IQ", int(gguf.GGUFValueType.UINT32), 0)
    p = tmp_path / "nested.gguf"
    p.write_bytes(_header_only([("general.x", array, nested)]))
    _expect_error(p, "nested more than")


def _tokens_and_rest(path) -> tuple[int, int]:
    """(where the token count is, where the array after it ends) in a tiny model's bytes."""
    data = path.read_bytes()
    k = b"tokenizer.ggml.tokens"
    i = data.index(k) + len(k) + 8        # value type ARRAY, element type STRING
    n, pos = struct.unpack_from("<Q", data, i)[0], i + 8
    for _ in range(n):
        pos += 8 + struct.unpack_from("<Q", data, pos)[0]
    return i, pos


def test_a_vocabulary_far_larger_than_the_model_is_refused_before_the_tokenizer_is_built(
        tmp_path, tiny_model_path, monkeypatch):
    """1.5M tokens in a file whose output layer has ~300 rows: before, the tokenizer was built
    for all of them first (10M tokens: 30 s and 3.5 GB) and only then compared."""
    import chatgui.engine.chat_model as chat_model

    def must_not_build(*args, **kwargs):
        raise AssertionError("the tokenizer was built before the vocabulary size was checked")

    monkeypatch.setattr(chat_model, "build_tokenizer", must_not_build)
    data = tiny_model_path.read_bytes()
    count_at, end = _tokens_and_rest(tiny_model_path)
    n = 1_500_000
    p = tmp_path / "vocab.gguf"
    rest = (struct.pack("<Q", 1) + b"b") * (n - 1)
    # The first token's length keeps the tensor data at the same alignment (it moves by 32s).
    first = b"a" * (1 + (-(8 + 8 + 1 + len(rest) - (end - count_at))) % 32)
    p.write_bytes(data[:count_at] + struct.pack("<Q", n) + struct.pack("<Q", len(first)) + first + rest + data[end:])
    _expect_error(p, "more tokens than the model's output layer")


def test_metadata_of_the_wrong_shape_is_a_load_error(tmp_path):
    """SentencePiece scores given as arrays were a bare TypeError (a traceback from `chatgui serve`)."""
    from tiny_gguf import vocabulary
    n = len(vocabulary()[0])

    def spm_with_array_scores(w):
        w.add_tokenizer_model("llama")
        w.add_array("tokenizer.ggml.scores", [[1.0, 2.0]] * n)

    _expect_error(write_tiny_model(tmp_path / "scores.gguf", edit=spm_with_array_scores),
                  "tokenizer.ggml.scores holds something other than numbers")

    def spm_with_bad_unknown(w):
        w.add_tokenizer_model("llama")
        w.add_array("tokenizer.ggml.scores", [0.0] * n)
        w.add_uint32("tokenizer.ggml.unknown_token_id", 10**6)

    _expect_error(write_tiny_model(tmp_path / "unk.gguf", edit=spm_with_bad_unknown), "unknown_token_id")

    def merges_of_numbers(w):
        w.add_array("tokenizer.ggml.merges", [1, 2, 3])

    _expect_error(write_tiny_model(tmp_path / "merges.gguf", edit=merges_of_numbers),
                  "tokenizer.ggml.merges holds something other than texts")

    def pre_as_array(w):
        w.add_array("tokenizer.ggml.pre", ["a", "b"])

    assert load_model(write_tiny_model(tmp_path / "pre.gguf", edit=pre_as_array), device="cpu").tok.warnings


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_gguf_does_not_hang_loading_or_add_model(tmp_path):
    """open() on a FIFO waits for a writer for ever: Add model and loading hung."""
    from chatgui.models.errors import ModelFetchError
    from chatgui.models.library import add_file

    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    outcome = {}

    def attempt():
        for name, call, error in (("load", lambda: load_model(fifo, device="cpu"), ModelLoadError),
                                  ("add", lambda: add_file(fifo, copy=False, folder=tmp_path / "models"),
                                   ModelFetchError)):
            try:
                call()
                outcome[name] = "accepted"
            except error as e:
                outcome[name] = str(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    hung = worker.is_alive()
    if hung:   # let the blocked open() go, so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
    assert not hung, f"blocked for 10 s opening the FIFO ({outcome})"
    assert "not a regular file" in outcome.get("load", "hung"), outcome
    assert "not a regular file" in outcome.get("add", "hung"), outcome


_REWRITE_CHILD = r"""
import os, sys
from pathlib import Path
from chatgui.common.types import SamplingSettings
from chatgui.engine import load_model
from chatgui.common.prompt import PromptMessage
p = Path(sys.argv[1])
m = load_model(p, device="cpu")
settings = SamplingSettings(max_new_tokens=4, temperature=0)
print("before:", repr("".join(e.text for e in m.generate([PromptMessage.user("the cat")], settings))))
with open(p, "r+b") as f:   # as `cp other.gguf` over it begins: the file is cut short, then written
    f.truncate(4096)
try:
    "".join(e.text for e in m.generate([PromptMessage.user("zebra xylophone")], settings))
    print("after: generated")
except Exception as e:
    print("after:", type(e).__name__, e)
"""


def test_a_model_file_cut_short_after_loading_is_an_error_not_a_crash(tmp_path):
    """Its weights are mapped from the file: reading a page past its new end was SIGBUS (the
    process died, exit -7). In a child process, so a crash fails this test, not the run."""
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0")   # quantized: the table stays in the file
    root = str(Path(__file__).parents[1])   # this checkout's chatgui, as pytest imports it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", _REWRITE_CHILD, str(p)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, f"the process died (exit {r.returncode}): {r.stderr[-2000:]}"
    assert "after: ModelFileChanged" in r.stdout and "load the model again" in r.stdout, r.stdout


def test_a_model_file_rewritten_in_place_is_refused_and_a_renamed_one_is_not(tmp_path):
    p = write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0")
    m = load_model(p, device="cpu")
    settings = SamplingSettings(max_new_tokens=4, temperature=0)
    chat = [PromptMessage.user("the cat")]
    before = "".join(e.text for e in m.generate(chat, settings))
    # Replaced by renaming another file onto its name (how downloads install): this process
    # still reads the file it loaded, whole, so it goes on answering the same.
    other = write_tiny_model(tmp_path / "other.gguf", qtype="Q8_0", seed=1)
    os.replace(other, p)
    assert "".join(e.text for e in m.generate(chat, settings)) == before
    # Rewritten in place (same bytes even): refused until loaded again.
    m2 = load_model(p, device="cpu")
    data = p.read_bytes()
    time.sleep(0.01)
    p.write_bytes(data)
    with pytest.raises(ModelFileChanged, match="changed on disk"):
        "".join(e.text for e in m2.generate(chat, settings))


def test_a_header_with_millions_of_texts_is_refused_when_their_count_is_read(tmp_path, monkeypatch):
    """Finding each text of an array is a Python step (10M tokens: 4.7 s): past a count no real
    file has, the array is refused at once. (The limit is lowered here to keep the file small.)"""
    import chatgui.engine.gguf_header as header

    monkeypatch.setattr(header, "MAX_STRING_ARRAY", 1000)
    texts = struct.pack("<IQ", int(gguf.GGUFValueType.STRING), 1001) + struct.pack("<Q", 0) * 1001
    p = tmp_path / "texts.gguf"
    p.write_bytes(_header_only([("tokenizer.ggml.tokens", int(gguf.GGUFValueType.ARRAY), texts)]))
    _expect_error(p, "absurd number of texts (1,001)")

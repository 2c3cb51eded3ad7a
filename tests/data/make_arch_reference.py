"""Make llama.cpp's reference for the architecture parity tests (tests/test_arch_parity.py).

    python tests/data/make_arch_reference.py            # every architecture, F32 and Q8_0

For every architecture in the table (chatgui/engine/archs.py) and each weight type, writes the tiny random-weight model
tests/tiny_gguf.py writes for it (deterministic: the test writes the same bytes again), runs
llama.cpp on a fixed token sequence and stores, per position, its five most likely next tokens
and their log-probabilities, with the file's sha256 (the test checks it, so a writer change that
would make the reference stale fails loudly rather than comparing against another model).

Needs llama-cpp-python, gguf and numpy only (a reference tool, never an app dependency): it
imports no torch code, only tests/tiny_gguf.py and chatgui/engine/archs.py (plain data).
Output: tests/data/arch_parity.llamacpp.json.
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

from chatgui.engine.archs import ARCHS  # noqa: E402  (plain data: no torch)
from tiny_gguf import write_tiny_model  # noqa: E402

QTYPES = ["F32", "Q8_0"]
N_LAYERS = 4          # (smollm3's NoPE layer is the 4th)
N_TOKENS = 64
OUT = Path(__file__).with_name("arch_parity.llamacpp.json")


def token_ids(vocab: int) -> list[int]:
    """The fixed sequence every case runs: random ids past the special tokens."""
    return np.random.default_rng(1234).integers(3, vocab, N_TOKENS).tolist()


def write_case(directory: Path, arch: str, qtype: str) -> Path:
    return write_tiny_model(directory / f"{arch}-{qtype}.gguf", arch=arch, qtype=qtype, n_layers=N_LAYERS)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference(path: Path) -> dict:
    from llama_cpp import Llama

    m = Llama(model_path=str(path), n_ctx=256, n_batch=256, n_threads=2, logits_all=True, verbose=False, seed=0)
    ids = token_ids(m.n_vocab())
    m.eval(ids)
    sc = np.array(m.scores[:len(ids)], dtype=np.float64)
    mx = sc.max(1, keepdims=True)
    lp = sc - mx - np.log(np.exp(sc - mx).sum(1, keepdims=True))
    top = np.argsort(-lp, 1)[:, :5]
    return {"sha256": sha256(path), "ids": ids, "top5_ids": top.tolist(),
            "top5_logprobs": np.take_along_axis(lp, top, 1).round(5).tolist()}


def main() -> None:
    from llama_cpp import __version__

    out = {"reference": f"llama.cpp via llama-cpp-python {__version__}, n_threads=2",
           "n_layers": N_LAYERS, "cases": {}}
    with tempfile.TemporaryDirectory() as d:
        for arch in ARCHS:
            for qtype in QTYPES:
                case = reference(write_case(Path(d), arch, qtype))
                out["cases"][f"{arch}-{qtype}"] = case
                print(arch, qtype, case["sha256"][:12], flush=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

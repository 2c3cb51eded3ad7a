"""Make llama.cpp's reference for the architecture parity tests (tests/test_arch_parity.py).

    python tests/data/make_arch_reference.py            # every architecture, F32 and Q8_0
    python tests/data/make_arch_reference.py gemma4-moe # only these cases, the others kept

For every architecture in the table (chatgui/engine/archs.py) and each weight type, writes the
tiny random-weight model tests/tiny_gguf.py writes for it (deterministic: the test writes the
same bytes again), runs
llama.cpp on a fixed token sequence and stores, per position, its five most likely next tokens
and their log-probabilities, with the file's sha256 (the test checks it, so a writer change that
would make the reference stale fails loudly rather than comparing against another model).

Needs llama-cpp-python, gguf and numpy only (a reference tool, never an app dependency): it
imports no torch code, only tests/tiny_gguf.py and chatgui/engine/archs.py (plain data).
Also the tokens llama.cpp gives a few texts under the new architectures' pre-tokenizers.
Output: tests/data/arch_parity.llamacpp.json. A new entry in archs.py: run this, commit the file.
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
# Pre-tokenizers of the new architectures' real files (Mistral 3: tekken; gpt-oss, Phi-4-mini:
# gpt-4o; OLMo: olmo; Qwen3.5: qwen35), checked on texts whose splits decide which of the tiny vocabulary's merges
# (" t", "he", " the", "in", " a", "on", "er", " s") apply.
PRE_TOKENIZERS = ["tekken", "gpt-4o", "olmo", "qwen35"]
# Tokenizer models other than gpt2, under their names (Gemma 4's own: tokenizer.ggml.model "gemma4";
# SentencePiece: "llama")
TOKENIZER_MODELS = ["gemma4", "llama"]
TEXTS = ["Hello the World's in on the er the", "CamelCaseWords theThe THEthe ÉTÉ été in-the s",
         "12345 1234567 a1b2 the\n\n  the\tthe  ", "I'M we'LL they'd /the/ ./the\r\n the"]


def token_ids(vocab: int) -> list[int]:
    """The fixed sequence every case runs: random ids past the special tokens."""
    return np.random.default_rng(1234).integers(3, vocab, N_TOKENS).tolist()


def case_names() -> list[str]:
    """Every case's name: each architecture's, then its test variants' ('<arch>-<variant>')."""
    return list(ARCHS) + [f"{a.name}-{v}" for a in ARCHS.values() for v in a.test_variants]


def case_spec(name: str) -> tuple[str, dict]:
    """(architecture, metadata over its test_metadata) of a case name."""
    if name in ARCHS:
        return name, {}
    arch, variant = name.rsplit("-", 1)
    return arch, ARCHS[arch].test_variants[variant]


def write_case(directory: Path, name: str, qtype: str) -> Path:
    arch, metadata = case_spec(name)
    return write_tiny_model(directory / f"{name}-{qtype}.gguf", arch=arch, qtype=qtype, n_layers=N_LAYERS,
                            metadata=metadata)


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


def tokenizations(path: Path) -> list[list[int]]:
    from llama_cpp import Llama

    m = Llama(model_path=str(path), n_ctx=64, n_threads=2, verbose=False, vocab_only=True)
    return [m.tokenize(text.encode(), add_bos=False, special=False) for text in TEXTS]


def write_pre_tokenizer_case(directory: Path, pre: str) -> Path:
    if pre in TOKENIZER_MODELS:
        return write_tiny_model(directory / f"tokenizer-{pre}.gguf", tokenizer=pre, n_layers=1)
    return write_tiny_model(directory / f"pre-{pre}.gguf", pre_tokenizer=pre, n_layers=1)


def main(only: list[str]) -> None:
    """only: case names to (re)make, keeping the file's other cases as they are (default: all)."""
    from llama_cpp import __version__

    out = {"reference": f"llama.cpp via llama-cpp-python {__version__}, n_threads=2",
           "n_layers": N_LAYERS, "cases": {}}
    if only:
        out = json.loads(OUT.read_text())
        if unknown := set(only) - set(case_names()):
            raise SystemExit(f"no such case: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as d:
        for name in only or case_names():
            for qtype in QTYPES:
                case = reference(write_case(Path(d), name, qtype))
                out["cases"][f"{name}-{qtype}"] = case
                print(name, qtype, case["sha256"][:12], flush=True)
        if not only:
            out["tokenize"] = {pre: tokenizations(write_pre_tokenizer_case(Path(d), pre))
                               for pre in PRE_TOKENIZERS + TOKENIZER_MODELS}
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

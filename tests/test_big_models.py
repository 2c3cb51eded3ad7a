"""Parity of the real Q4_K_M models with llama.cpp (opt-in: `-m big_model`; never in CI).

    CHATGUI_BIG_MODELS=/folder/with/the/gguf/files python -m pytest -m big_model tests/test_big_models.py -s

The files are those of ../shared/README.md, assembled under these names; the reference data is
tests/data/<name>.llamacpp.json (tests/data/make_reference.py). Targets (issue 13): tokenization
exact, teacher-forced top-1 >= 97%, mean |delta logp| of llama.cpp's top 5 <= 0.15.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import DATA
from test_real_model import assert_detokenized_as_llamacpp, teacher_forced_parity, wire

pytestmark = pytest.mark.big_model

MODELS = ["smollm2-135m-q4_1", "gemma3-270m-q4_k_m", "qwen2.5-coder-0.5b-q4_k_m", "qwen2.5-coder-1.5b-q4_k_m"]


@pytest.fixture(scope="module", params=MODELS)
def loaded(request):
    from chatgui.engine import load_model

    folder = os.environ.get("CHATGUI_BIG_MODELS")
    path = Path(folder or ".") / f"{request.param}.gguf"
    if not folder or not path.is_file():
        pytest.skip(f"{path.name} not found (set CHATGUI_BIG_MODELS to the folder holding it)")
    ref = json.loads((DATA / f"{request.param}.llamacpp.json").read_text(encoding="utf-8"))
    return load_model(path, device="cpu"), ref


def test_tokenization_and_prompts_are_exactly_llamacpps(loaded):
    model, ref = loaded
    for case in ref["tokenize"]:
        assert model.tokenize(case["text"]) == case["ids"], case["text"]
    for case in ref["greedy_chat"]:
        assert model.render_chat(wire(case["messages"])) == case["prompt"]
        assert model.tokenize(case["prompt"]) == case["prompt_ids"]


def test_detokenization_is_exactly_llamacpps(loaded):
    """Gemma 3's newlines and runs of spaces are user-defined tokens: text, not special ones."""
    assert_detokenized_as_llamacpp(*loaded)


def test_teacher_forced_parity(loaded):
    model, ref = loaded
    top1, mean_diff = teacher_forced_parity(model, ref)
    print(f"\n{model.path.name}: teacher-forced top-1 {top1:.1%}, mean |dlogp| {mean_diff:.3f}")
    assert top1 >= 0.97
    assert mean_diff <= 0.15

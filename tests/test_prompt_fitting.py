"""fit_prompt drops the oldest turns by arithmetic on kept per-message token counts; the
result must be what the old drop-a-turn-and-re-render loop gave, in every case."""
from __future__ import annotations

import random
import threading

import pytest

from chatgui.engine import load_model
from chatgui.engine.chat_model import PromptFitCancelled
from chatgui.engine.errors import PromptTooLongError
from fit_reference import fit_by_rerendering
from tiny_gguf import write_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(write_tiny_model(tmp_path_factory.mktemp("fit") / "m.gguf", context=512), device="cpu")


def random_chat(rng: random.Random, turns: int, system: bool) -> list[dict]:
    words = ["the", "a", "lighthouse", "keeper", "storm", "你好", "🙂", "\n", "the the the", "on"]
    msgs = [{"role": "system", "content": "be brief " * rng.randint(1, 5)}] if system else []
    for _ in range(turns):
        msgs.append({"role": "user", "content": " ".join(rng.choices(words, k=rng.randint(1, 40)))})
        for _ in range(rng.choice([1, 1, 1, 2])):  # sometimes two replies in a row
            msgs.append({"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randint(0, 80)))})
    if rng.random() < 0.7:
        msgs.append({"role": "user", "content": "and now?"})
    return msgs


@pytest.mark.parametrize("seed", range(40))
def test_same_result_as_dropping_turn_by_turn(model, seed):
    rng = random.Random(seed)
    msgs = random_chat(rng, rng.choice([0, 1, 2, 5, 20, 40, 60]), system=rng.random() < 0.5)
    max_new = rng.choice([1, 16, 64, 200, 400])
    try:
        expected = fit_by_rerendering(model, msgs, max_new)
    except PromptTooLongError:
        with pytest.raises(PromptTooLongError):
            model.fit_prompt(msgs, max_new)
        return
    assert model.fit_prompt(msgs, max_new) == expected
    assert model.fit_prompt(msgs, max_new) == expected  # again, from the kept counts


def test_long_chat_is_fitted_without_rendering_it_whole(model, monkeypatch):
    msgs = random_chat(random.Random(1), 1000, system=True)
    msgs[1]["content"] = "the oldest question, never counted"
    model.__dict__.pop("_count_cache", None)
    rendered = []
    real = model.render_chat
    monkeypatch.setattr(model, "render_chat", lambda m, *a, **k: rendered.append(len(m)) or real(m, *a, **k))
    ids, dropped = model.fit_prompt(msgs, 64)
    assert dropped > 1900 and len(ids) <= model.context_length - 64
    assert rendered and max(rendered) < 100  # only prompts about the context's size were rendered
    assert len(model._count_cache) < 300 and msgs[1]["content"] not in model._count_cache  # nor tokenized
    monkeypatch.undo()
    system, rest = msgs[:1], msgs[1:]
    assert ids == model.tokenize(model.render_chat(system + rest[dropped:]))
    previous = dropped - 1  # one more turn kept (the turn before starts at a user message) does not fit
    while rest[previous]["role"] != "user":
        previous -= 1
    assert len(model.tokenize(model.render_chat(system + rest[previous:]))) > model.context_length - 64


def test_fitting_can_be_cancelled(model):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PromptFitCancelled):
        model.fit_prompt(random_chat(random.Random(2), 200, system=False), 64, cancel=cancel)


def test_count_tokens_exact_for_chats_that_could_fit(model):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the lighthouse 你好"},
            {"role": "assistant", "content": "a storm 🙂"}]
    assert model.count_tokens(msgs) == len(model.tokenize(model.render_chat(msgs)))
    long = random_chat(random.Random(4), 400, system=True)
    exact = len(model.tokenize(model.render_chat(long)))
    assert abs(model.count_tokens(long) - exact) < 0.02 * exact  # an estimate, far over the context anyway

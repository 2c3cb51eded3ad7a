"""fit_prompt drops the oldest turns by arithmetic on kept per-message token counts; the
result must be what the old drop-a-turn-and-re-render loop gave, in every case."""
from __future__ import annotations

import random
import threading

import pytest

from chatgui.engine import load_model
from chatgui.engine.chat_model import PromptFitCancelled
from chatgui.engine.errors import PromptTooLongError
from chatgui.common.prompt import PromptMessage, Role
from fit_reference import fit_by_rerendering
from tiny_gguf import write_tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(write_tiny_model(tmp_path_factory.mktemp("fit") / "m.gguf", context=512), device="cpu")


def random_chat(rng: random.Random, turns: int, system: bool) -> list[dict]:
    words = ["the", "a", "lighthouse", "keeper", "storm", "你好", "🙂", "\n", "the the the", "on"]
    msgs = [PromptMessage.system("be brief " * rng.randint(1, 5))] if system else []
    for _ in range(turns):
        msgs.append(PromptMessage.user(" ".join(rng.choices(words, k=rng.randint(1, 40)))))
        for _ in range(rng.choice([1, 1, 1, 2])):  # sometimes two replies in a row
            msgs.append(PromptMessage.assistant(" ".join(rng.choices(words, k=rng.randint(0, 80)))))
    if rng.random() < 0.7:
        msgs.append(PromptMessage.user("and now?"))
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
    msgs[1] = PromptMessage.user("the oldest question, never counted")
    model.__dict__.pop("_count_cache", None)
    rendered = []
    real = model.render_chat
    monkeypatch.setattr(model, "render_chat", lambda m, *a, **k: rendered.append(len(m)) or real(m, *a, **k))
    ids, dropped = model.fit_prompt(msgs, 64)
    assert dropped > 1900 and len(ids) <= model.context_length - 64
    assert rendered and max(rendered) < 100  # only prompts about the context's size were rendered
    assert len(model._count_cache) < 300 and msgs[1].content not in model._count_cache  # nor tokenized
    monkeypatch.undo()
    system, rest = msgs[:1], msgs[1:]
    assert ids == model.tokenize(model.render_chat(system + rest[dropped:]))
    previous = dropped - 1  # one more turn kept (the turn before starts at a user message) does not fit
    while rest[previous].role is not Role.USER:
        previous -= 1
    assert len(model.tokenize(model.render_chat(system + rest[previous:]))) > model.context_length - 64


def test_fitting_can_be_cancelled(model):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PromptFitCancelled):
        model.fit_prompt(random_chat(random.Random(2), 200, system=False), 64, cancel=cancel)


def test_count_tokens_exact_for_chats_that_could_fit(model):
    msgs = [PromptMessage.system("be brief"), PromptMessage.user("the lighthouse 你好"),
            PromptMessage.assistant("a storm 🙂")]
    assert model.count_tokens(msgs) == len(model.tokenize(model.render_chat(msgs)))
    long = random_chat(random.Random(4), 400, system=True)
    exact = len(model.tokenize(model.render_chat(long)))
    assert abs(model.count_tokens(long) - exact) < 0.02 * exact  # an estimate, far over the context anyway


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_a_long_chat_keeps_the_start_of_its_prompt_from_turn_to_turn(model):
    """So the cache can be reused: the prompt of the next turn begins as this one did."""
    from chatgui.engine.chat_model import FIT_SLACK
    msgs = [PromptMessage.system("be brief")]
    for i in range(60):
        msgs += [PromptMessage.user(f"question {i} " + "the storm " * 4),
                 PromptMessage.assistant("a lighthouse keeper " * 5)]
    msgs.append(PromptMessage.user("and now?"))
    room = model.context_length - 64
    model._fit_anchor = None
    ids, dropped = model.fit_reply_prompt(msgs, 64)
    assert dropped > model.fit_prompt(msgs, 64)[1]          # more than just what did not fit...
    assert len(ids) <= room * FIT_SLACK and msgs[1 + dropped].role is Role.USER   # ...down to the slack
    turns = 0
    while True:   # the chat goes on: the same start while it fits
        msgs += [PromptMessage.assistant(f"answer {turns} " + "a keeper " * 3),
                 PromptMessage.user(f"more {turns}")]
        turns += 1
        next_ids, next_dropped = model.fit_reply_prompt(msgs, 64)
        assert len(next_ids) <= room
        if next_dropped != dropped:
            break
        assert common_prefix(ids, next_ids) >= len(ids) - 8   # it only grew at the end
        ids = next_ids
    assert turns > 3, "the start must hold for several turns"
    assert next_dropped > dropped and len(next_ids) <= room * FIT_SLACK
    assert next_ids == model.fit_prompt(msgs, 64, room=int(room * FIT_SLACK))[0]


def test_another_chat_does_not_inherit_the_kept_start(model):
    from chatgui.engine.chat_model import FIT_SLACK
    first = random_chat(random.Random(11), 60, system=False)
    second = random_chat(random.Random(12), 60, system=False)
    model.fit_reply_prompt(first, 64)
    room = model.context_length - 64
    ids, dropped = model.fit_reply_prompt(second, 64)
    assert dropped > 0 and (ids, dropped) == model.fit_prompt(second, 64, room=int(room * FIT_SLACK))


def test_a_replay_gets_the_prompt_the_reply_had_whatever_came_since(model):
    """The start a reply's prompt kept depends on the turns before it; a replay or branch passes
    the dropped count recorded with the reply (same_as) and gets the same prompt."""
    msgs = [PromptMessage.user(f"question {i} " + "the storm " * 4) if i % 2 == 0 else
            PromptMessage.assistant("a lighthouse keeper " * 5) for i in range(120)]
    msgs.append(PromptMessage.user("next"))
    model._fit_anchor = None
    _ids, first = model.fit_reply_prompt(msgs, 64)
    for turn in range(40):   # the chat goes on from the same start, until a fresh fit would start elsewhere
        msgs += [PromptMessage.assistant(f"answer {turn} a keeper"), PromptMessage.user(f"more {turn}")]
        ids, dropped = model.fit_reply_prompt(msgs, 64)
        assert dropped == first
        anchor, model._fit_anchor = model._fit_anchor, None   # as after a restart, or another chat
        fresh = model.fit_reply_prompt(msgs, 64)[1]
        model._fit_anchor = anchor
        if fresh != dropped:
            break
    assert fresh != dropped, "the test needs a chat where a fresh fit starts elsewhere"
    model._fit_anchor = None
    assert model.fit_reply_prompt(msgs, 64, same_as=dropped) == (ids, dropped)   # the replay's prompt

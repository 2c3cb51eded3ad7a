"""Several candidates decoded as one batch (engine/batch.py) on the tiny model."""
from __future__ import annotations

import threading

import pytest
import torch

from chatgui.engine import SamplingSettings
from chatgui.engine.batch import BatchKV, generate_batch
from chatgui.engine.model import KVCache
from chatgui.common.prompt import PromptMessage

HI = [PromptMessage.user("Hello there")]
GREEDY = SamplingSettings(temperature=0, max_new_tokens=12, repeat_penalty=1.0)
SAMPLED = SamplingSettings(temperature=1.0, max_new_tokens=12, seed=5)


def run(model, settings, n, **kw):
    batch = generate_batch(model, HI, settings, n, **kw)
    events = list(batch.events())
    return batch, events


def test_greedy_candidates_are_the_single_reply(tiny_model):
    single = tiny_model.generate(HI, GREEDY)
    single_events = list(single)
    batch, events = run(tiny_model, GREEDY, 3)
    assert [c.text for c in batch.choices] == [single.text] * 3
    for i in range(3):
        mine = [e for j, e in events if j == i and e is not None]
        assert [e.token_id for e in mine] == [e.token_id for e in single_events]
        # The decode step (decode.py) and the batched forward use different kernels on the compact
        # weights: the numbers agree closely, not bit for bit.
        assert [e.prob for e in mine] == [pytest.approx(e.prob, rel=0.05, abs=1e-4) for e in single_events]
    assert [j for j, e in events if e is None] == [0, 1, 2]      # each candidate says when it ends
    assert batch.stats.generated_tokens == 3 * single.stats.generated_tokens


def test_each_candidate_has_its_own_random_stream_and_candidate_0_is_the_single_reply(tiny_model):
    batch, _ = run(tiny_model, SAMPLED, 4)
    texts = [c.text for c in batch.choices]
    assert len(set(texts)) > 1
    single = tiny_model.generate(HI, SAMPLED)
    list(single)
    assert texts[0] == single.text
    again, _ = run(tiny_model, SAMPLED, 4)
    assert [c.text for c in again.choices] == texts             # seeded: repeatable


def test_each_candidate_stops_on_its_own(tiny_model):
    free, _ = run(tiny_model, SAMPLED, 4)
    target = free.choices[1].text
    stop = target[3:5]
    cut, events = run(tiny_model, SAMPLED.with_(stop=(stop,)), 4)
    assert cut.choices[1].text == target[:target.index(stop)]
    assert cut.choices[1].stats.finish_reason == "stop_string"
    for before, after in zip(free.choices, cut.choices):
        if stop in before.text:
            assert after.text == before.text[:before.text.index(stop)]
        else:
            assert after.text == before.text and after.stats.finish_reason == before.stats.finish_reason


def test_the_models_cache_is_untouched_by_a_batch(tiny_model):
    first = tiny_model.generate(HI, GREEDY)
    list(first)
    run(tiny_model, SAMPLED, 3)
    follow = [PromptMessage.user("Hello there"), PromptMessage.assistant(first.text),
              PromptMessage.user("And then?")]
    a = tiny_model.generate(follow, GREEDY)
    list(a)
    tiny_model._cache_ids = []      # nothing reused: computed from scratch
    b = tiny_model.generate(follow, GREEDY)
    list(b)
    assert a.text == b.text


def test_a_cancelled_batch_ends_every_candidate(tiny_model):
    cancel = threading.Event()
    batch = generate_batch(tiny_model, HI, SAMPLED.with_(max_new_tokens=50), 3, cancel)
    for i, event in batch.events():
        cancel.set()
    assert all(c.stats.finish_reason == "cancelled" for c in batch.choices)
    assert all(len(c.token_ids) <= 1 for c in batch.choices)


def test_candidates_left_alone_in_the_batch_decode_as_before(tiny_model):
    # Two of three candidates stop early: the batch shrinks (a finished row is kept as padding,
    # never a batch of one) and the rest decode exactly as they did in the full batch.
    free, _ = run(tiny_model, SAMPLED, 3)
    texts = [c.text for c in free.choices]
    stops = tuple(next(ch for ch in t[1:] if ch.isascii() and ch.isprintable()) for t in texts[:2])
    cut, _ = run(tiny_model, SAMPLED.with_(stop=stops), 3)
    for before, after in zip(texts, cut.choices):
        ends = [before.index(x) for x in stops if x in before]
        assert after.text == (before[:min(ends)] if ends else before)


def test_finished_candidates_leave_the_batch(tiny_model):
    batch = generate_batch(tiny_model, HI, SAMPLED, 4)
    kv = BatchKV(KVCache(8, 2, 4, torch.float32, "cpu"), 3, 4, 8)
    for r in range(4):
        kv.kv[:, r] = r
    for i in (0, 1, 3):
        batch.choices[i].done = True
    rows = batch._drop_finished([0, 1, 2, 3], [kv])
    assert rows == [2] and kv.kv.shape[1] == 1 and bool((kv.kv[:, 0] == 2).all())


def test_one_candidate_decodes_on_its_own_cache_and_leaves_the_models_alone(tmp_path):
    """A batch of one row must not take the single-sequence fast path (which works on the model's
    own cache, and would keep the batch cache if it were first built then)."""
    from chatgui.engine import load_model
    from tiny_gguf import write_tiny_model

    path = write_tiny_model(tmp_path / "m.gguf")
    greedy = SamplingSettings(temperature=0, max_new_tokens=10)
    other = [PromptMessage.user("Something else entirely, and longer")]
    fresh = load_model(path, device="cpu")
    expected = [[e.token_id for e in fresh.generate(chat, greedy, ignore_eos=True)] for chat in (HI, other)]
    m = load_model(path, device="cpu")
    batch = m.generate_candidates(HI, greedy, 1, ignore_eos=True)
    for _ in batch.events():
        pass
    assert batch.choices[0].token_ids == expected[0]
    assert [e.token_id for e in m.generate(other, greedy, ignore_eos=True)] == expected[1]


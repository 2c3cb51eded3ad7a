"""Sampling functions: pure functions on logits, checked by their defining properties."""
from __future__ import annotations

import torch

from chatgui.engine.sampling import (apply_repeat_penalty, apply_temperature, logits_to_probs, make_generator,
                                     min_p_filter, sample, top_k_filter, top_p_filter)
from chatgui.common.types import SamplingSettings

OFF = dict(top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


def logits(n=1000, seed=0):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 3


def test_top_k_keeps_exactly_k():
    x = logits()
    for k in (1, 5, 40, 999):
        kept = torch.isfinite(top_k_filter(x, k))
        assert int(kept.sum()) == k
        assert set(torch.nonzero(kept).flatten().tolist()) == set(torch.topk(x, k).indices.tolist())
    assert torch.equal(top_k_filter(x, 0), x)


def test_top_p_keeps_smallest_set_reaching_mass():
    x = logits()
    p_all = torch.softmax(x, -1)
    for p in (0.1, 0.5, 0.9, 0.99):
        kept = torch.isfinite(top_p_filter(x, p))
        mass = float(p_all[kept].sum())
        assert mass >= p - 1e-6
        # Dropping the least likely kept token would fall below p: the set is minimal.
        smallest = float(p_all[kept].min())
        assert mass - smallest < p
        assert bool(kept[int(torch.argmax(x))])


def test_min_p_relative_threshold():
    x = logits()
    probs = torch.softmax(x, -1)
    kept = torch.isfinite(min_p_filter(x, 0.1))
    assert torch.equal(kept, probs >= 0.1 * probs.max())
    assert int(kept.sum()) >= 1


def test_temperature_zero_is_greedy_and_scaling():
    x = logits()
    probs = logits_to_probs(x, SamplingSettings(temperature=0, **OFF))
    assert float(probs.max()) == 1.0 and int(torch.argmax(probs)) == int(torch.argmax(x))
    g = make_generator(0)
    assert all(sample(probs, g) == int(torch.argmax(x)) for _ in range(20))
    hot = torch.softmax(apply_temperature(x, 2.0), -1)
    cold = torch.softmax(apply_temperature(x, 0.5), -1)
    assert float(cold.max()) > float(torch.softmax(x, -1).max()) > float(hot.max())


def test_repeat_penalty_direction():
    x = torch.tensor([2.0, -2.0, 1.0, 0.5])
    y = apply_repeat_penalty(x, [0, 1, 1], 2.0)
    assert y.tolist() == [1.0, -4.0, 1.0, 0.5]
    assert torch.equal(apply_repeat_penalty(x, [0], 1.0), x)


def test_seed_reproducible_and_distribution_respected():
    x = logits(50)
    s = SamplingSettings(temperature=1.0, top_k=10, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
    probs = logits_to_probs(x, s)
    a = [sample(probs, make_generator(123)) for _ in range(5)]
    g1, g2 = make_generator(7), make_generator(7)
    seq1 = [sample(probs, g1) for _ in range(200)]
    seq2 = [sample(probs, g2) for _ in range(200)]
    assert seq1 == seq2 and len(set(a)) == 1
    allowed = set(torch.topk(x, 10).indices.tolist())
    assert set(seq1) <= allowed and len(set(seq1)) > 2


def test_draws_follow_the_probabilities():
    probs = torch.zeros(1000)
    probs[[3, 500, 999]] = torch.tensor([0.6, 0.3, 0.1])
    g = make_generator(11)
    draws = [sample(probs, g) for _ in range(6000)]
    assert set(draws) == {3, 500, 999}
    for token, p in ((3, 0.6), (500, 0.3), (999, 0.1)):
        assert abs(draws.count(token) / len(draws) - p) < 0.025


def test_fast_top_k_path_equals_filtering_the_whole_vocabulary():
    x = logits(5000, seed=3)
    for s in (SamplingSettings(temperature=0.8, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.0),
              SamplingSettings(temperature=1.3, top_k=200, top_p=0.5, min_p=0.0, repeat_penalty=1.0),
              SamplingSettings(temperature=0.5, top_k=3, top_p=1.0, min_p=0.2, repeat_penalty=1.0)):
        slow = apply_temperature(x, s.temperature)
        slow = torch.softmax(min_p_filter(top_p_filter(top_k_filter(slow, s.top_k), s.top_p), s.min_p), -1)
        torch.testing.assert_close(logits_to_probs(x, s), slow)


def test_top_p_cut_through_tied_logits_keeps_the_lower_ids_on_both_paths():
    x = logits(5000, seed=4) - 10
    tied = torch.tensor([4000, 17, 2500, 900, 3333])
    x[tied] = 3.0                                   # five equal best logits: top-p cuts through them
    s = SamplingSettings(temperature=1.0, top_k=40, top_p=0.5, min_p=0.0, repeat_penalty=1.0)
    slow = torch.softmax(top_p_filter(top_k_filter(x, 40), 0.5), -1)
    fast = logits_to_probs(x, s)
    torch.testing.assert_close(fast, slow)
    assert torch.equal(torch.nonzero(fast > 0).flatten(), tied.sort().values[:3])


def test_explain_sampling_matches_the_sampling_functions():
    from chatgui.engine.sampling import explain_sampling

    x = logits(2000, seed=5)
    for s in (SamplingSettings(temperature=0.7, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.3),
              SamplingSettings(temperature=1.5, top_k=0, top_p=0.6, min_p=0.0, repeat_penalty=1.0),
              SamplingSettings(temperature=0, top_k=40, top_p=0.9, min_p=0.05, repeat_penalty=1.0)):
        recent = [int(i) for i in torch.topk(x, 3).indices]
        stages = explain_sampling(x, s, recent, top_n=x.numel())
        probs = logits_to_probs(x, s, recent)
        survivors = {int(i) for i in torch.nonzero(probs).flatten()}
        shown = {st.token_id for st in stages}
        assert survivors <= shown
        for st in stages:
            assert (st.final_prob > 0) == (st.token_id in survivors)
            assert (st.kept_top_k and st.kept_top_p and st.kept_min_p) == (st.final_prob > 0)
            assert abs(st.final_prob - float(probs[st.token_id])) < 1e-6
        assert [st.raw_prob for st in stages] == sorted((st.raw_prob for st in stages), reverse=True)


def test_fast_argmax_equals_torch_argmax_first_maximum_included():
    from chatgui.engine.sampling import argmax
    g = torch.Generator().manual_seed(5)
    for n in (49152, 4096, 1000, 7, 1):
        for trial in range(30):
            x = torch.randn(n, generator=g)
            if trial % 3 == 1 and n > 1:        # a tie for the maximum, in different groups
                i, j = sorted(torch.randint(0, n, (2,), generator=g).tolist())
                x[i] = x[j] = x.max() + 1
            if trial % 3 == 2:                  # all equal
                x = torch.full((n,), -2.5)
            assert argmax(x) == int(torch.argmax(x))


def test_drawing_from_candidates_picks_what_sampling_the_whole_vocabulary_picks():
    """Generation draws from candidates(); the same seed must give the same token as sample()
    on logits_to_probs (what the sampling inspector shows)."""
    from chatgui.engine.sampling import candidates, draw
    x = logits(5000, seed=6)
    recent = list(range(0, 5000, 79))
    for s in (SamplingSettings(), SamplingSettings(temperature=0), SamplingSettings(top_k=0, top_p=0.5),
              SamplingSettings(top_k=3, min_p=0)):
        ids, probs = candidates(x, s, recent)
        dense = logits_to_probs(x, s, recent)
        assert torch.equal(ids, torch.nonzero(dense > 0).flatten())
        for seed in range(20):
            assert int(ids[draw(probs, make_generator(seed))]) == sample(dense, make_generator(seed))


def test_nan_logits_still_give_one_token():
    from chatgui.engine.sampling import candidates, draw
    x = torch.full((5000,), float("nan"))
    for s in (SamplingSettings(), SamplingSettings(temperature=0), SamplingSettings(top_k=0)):
        ids, probs = candidates(x, s)
        assert ids.numel() == 1 and draw(probs, make_generator(0)) == 0

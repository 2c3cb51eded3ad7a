"""Sampling functions: pure functions on logits, checked by their defining properties and
against small cases computed by hand (DRY, XTC); the sampler registry and its stages."""
from __future__ import annotations

import math

import pytest
import torch

from chatgui.common.samplers import SAMPLER_DEFAULTS, SAMPLER_STAGES, stages_on
from chatgui.common.types import SamplingSettings
from chatgui.engine.sampling import (STAGE_FUNCTIONS, apply_dry_penalty, apply_repeat_penalty, apply_temperature,
                                     breaker_token_ids, candidates, draw, dry_repeat_lengths, logits_to_probs,
                                     make_generator, min_p_filter, top_k_filter, top_p_filter, xtc_expected,
                                     xtc_filter)

OFF = dict(top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


def sample(probs: torch.Tensor, generator: torch.Generator) -> int:
    """One token id drawn from probabilities over the whole vocabulary (draw on the nonzero ones)."""
    support = torch.nonzero(probs > 0).flatten()
    return int(support[draw(probs[support], generator)])


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
            assert list(st.kept) == [stage.name for stage in SAMPLER_STAGES]
            assert all(st.kept.values()) == (st.final_prob > 0)
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


# -- the registry ------------------------------------------------------------------------------
def test_every_declared_stage_has_its_function_and_settings_field():
    assert set(STAGE_FUNCTIONS) == {stage.name for stage in SAMPLER_STAGES}
    s = SamplingSettings()
    assert {name: getattr(s, name) for name in SAMPLER_DEFAULTS} == SAMPLER_DEFAULTS
    assert set(s.to_dict()) == set(SAMPLER_DEFAULTS) | {"max_new_tokens", "seed", "stop", "json_reply"}
    with pytest.raises(TypeError):
        SamplingSettings(dry_multiplyer=0.8)        # a typo is an error, as for a dataclass


def test_dry_and_xtc_are_off_by_default_and_do_nothing_then():
    on = {stage.name for stage in stages_on(SamplingSettings().sampler_values())}
    assert "dry" not in on and "xtc" not in on and {"temperature", "top_k", "top_p", "min_p"} <= on
    x = logits(300, seed=9)
    history = [1, 2, 3, 1, 2] * 4
    plain = SamplingSettings(dry_multiplier=0.0, xtc_probability=0.0)
    # Set but switched off by their first field: the same distribution, and no random number used.
    idle = plain.with_(dry_base=3.0, dry_allowed_length=1, xtc_threshold=0.01)
    g1, g2 = make_generator(5), make_generator(5)
    for a, b in zip(candidates(x, plain, history, g1), candidates(x, idle, history, g2)):
        assert torch.equal(a, b)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_settings_read_from_a_dict_keep_good_fields_and_default_the_rest():
    s = SamplingSettings.from_dict({"dry_multiplier": 0.8, "dry_sequence_breakers": ["\n", "##"],
                                    "xtc_probability": "often", "xtc_threshold": 1.5, "top_k": 12.0})
    assert (s.dry_multiplier, s.dry_sequence_breakers, s.top_k) == (0.8, ("\n", "##"), 12)
    assert (s.xtc_probability, s.xtc_threshold) == (0.0, 0.1)     # not a number; out of range
    assert SamplingSettings.from_dict(s.to_dict()) == s


# -- DRY ---------------------------------------------------------------------------------------
def test_dry_repeat_lengths_hand_computed():
    # a b c x a b: "a b" appeared before, followed by c: emitting c would make the repeat 3 long.
    assert dry_repeat_lengths([1, 2, 3, 9, 1, 2], frozenset(), 2) == {3: 2}
    assert dry_repeat_lengths([1, 2, 3, 9, 1, 2], frozenset(), 3) == {}          # shorter than allowed
    # The longest repeat per token: "0 2" then 7 (length 1) and "1 2" then 7 (length 2).
    assert dry_repeat_lengths([1, 2, 7, 0, 2, 7, 1, 2], frozenset(), 1) == {7: 2}
    # A breaker (5) ends how far back a repeat reaches: "5 1 2" counts only as "1 2".
    assert dry_repeat_lengths([5, 1, 2, 3, 5, 1, 2], frozenset(), 2) == {3: 3}
    assert dry_repeat_lengths([5, 1, 2, 3, 5, 1, 2], frozenset({5}), 2) == {3: 2}
    # A breaker is never penalized itself, and the end of a breaker-only history has no repeat.
    assert dry_repeat_lengths([1, 2, 5, 1, 2], frozenset({5}), 2) == {}
    assert dry_repeat_lengths([1, 5], frozenset({5}), 1) == {}


def test_dry_penalty_hand_computed_and_capped():
    x = torch.zeros(10)
    y = apply_dry_penalty(x, {3: 2, 6: 4}, 0.8, 1.75, 2)
    expected = torch.zeros(10)
    expected[3], expected[6] = -0.8, -0.8 * 1.75 ** 2
    torch.testing.assert_close(y, expected)
    huge = apply_dry_penalty(x, {3: 10_000}, 0.8, 4.0, 2)   # 4^9998 overflows: 4^63 (e^88.72 is the float32 limit)
    assert torch.isfinite(huge).all() and float(huge[3]) == pytest.approx(-0.8 * 4.0 ** 63, rel=1e-5)


def test_dry_in_the_sampling_chain():
    x = torch.zeros(10)
    s = SamplingSettings(temperature=1.0, dry_multiplier=1.0, dry_base=2.0, dry_allowed_length=2, **OFF)
    probs = logits_to_probs(x, s, [1, 2, 3, 4, 1, 2])          # "1 2" was followed by 3
    e = math.exp(-1.0)
    assert float(probs[3]) == pytest.approx(e / (9 + e))
    assert float(probs[0]) == pytest.approx(1 / (9 + e))
    # Token 4 holds a sequence breaker: "4 1 2" cannot be a repeat of more than "1 2".
    history = [4, 1, 2, 3, 4, 1, 2]
    texts = [b"a", b"b", b"c", b"d", b"\n"] + [b"z"] * 5
    breakers = lambda strings: breaker_token_ids(texts, strings)   # noqa: E731
    plain = logits_to_probs(x, s, history)                                  # no token texts: no breakers
    broken = logits_to_probs(x, s, history, breakers)
    assert float(plain[3]) == pytest.approx(math.exp(-2.0) / (9 + math.exp(-2.0)))   # a repeat of 3: 2^1
    assert float(broken[3]) == pytest.approx(e / (9 + e))                             # capped at 2: 2^0


def test_breaker_tokens_are_those_holding_a_breaker_string():
    vocabulary = [b"a", b"\n", b"x:y", b"b", "\u00e9".encode(), b"\n\n"]
    assert breaker_token_ids(vocabulary, ("\n", ":", "\u00e9")) == frozenset({1, 2, 4, 5})
    assert breaker_token_ids(vocabulary, ("", "q")) == frozenset()


# -- XTC ---------------------------------------------------------------------------------------
PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def test_xtc_removes_the_top_choices_but_the_least_likely_of_them():
    kept = torch.softmax(xtc_filter(PROBS.log(), 0.1), -1)
    torch.testing.assert_close(kept, torch.tensor([0.0, 0.0, 0.75, 0.25]))
    torch.testing.assert_close(torch.softmax(xtc_filter(PROBS.log(), 0.4), -1), PROBS)   # one top choice
    expected = torch.softmax(xtc_expected(PROBS.log(), 0.1, 0.5), -1)
    torch.testing.assert_close(expected, torch.tensor([0.25, 0.15, 0.45, 0.15]))


def test_xtc_in_the_sampling_chain_fires_with_its_probability():
    s = SamplingSettings(temperature=1.0, xtc_probability=1.0, xtc_threshold=0.1, **OFF)
    ids, probs = candidates(PROBS.log(), s, (), make_generator(0))
    assert ids.tolist() == [2, 3] and probs.tolist() == pytest.approx([0.75, 0.25])
    # After min-p (0.2 x 0.5 removes token 3) XTC leaves only token 2.
    ids, probs = candidates(PROBS.log(), s.with_(min_p=0.2), (), make_generator(0))
    assert ids.tolist() == [2] and probs.tolist() == pytest.approx([1.0])
    # Off above a threshold of 0.5; the inspector (no generator) sees the expected distribution.
    assert candidates(PROBS.log(), s.with_(xtc_threshold=0.6), (), make_generator(0))[0].tolist() == [0, 1, 2, 3]
    half = logits_to_probs(PROBS.log(), s.with_(xtc_probability=0.5))
    torch.testing.assert_close(half, torch.tensor([0.25, 0.15, 0.45, 0.15]))
    # At 0.5 it fires on about half the tokens.
    g = make_generator(3)
    fired = sum(candidates(PROBS.log(), s.with_(xtc_probability=0.5), (), g)[0].numel() == 2 for _ in range(400))
    assert 160 < fired < 240


def test_dry_repeat_lengths_equal_their_definition_on_repetitive_histories():
    """Against a direct reading of the definition: for each earlier place, count backwards how
    many tokens equal the history's last ones (never past a breaker)."""
    def by_definition(history, breakers, allowed):
        n, out = len(history), {}
        limit = next((i for i in range(n) if history[n - 1 - i] in breakers), n)
        for end in range(n - 1):
            length = 0
            while length < min(limit, end + 1) and history[end - length] == history[n - 1 - length]:
                length += 1
            follower = history[end + 1]
            if length >= allowed and follower not in breakers and length > out.get(follower, 0):
                out[follower] = length
        return out

    g = torch.Generator().manual_seed(2)
    for trial in range(300):
        n = int(torch.randint(1, 40, (1,), generator=g))
        history = torch.randint(0, 1 + trial % 4, (n,), generator=g).tolist()   # 1-4 distinct tokens
        breakers = frozenset({3}) if trial % 3 == 0 else frozenset()
        for allowed in (1, 2, 3):
            assert dry_repeat_lengths(history, breakers, allowed) == by_definition(history, breakers, allowed)

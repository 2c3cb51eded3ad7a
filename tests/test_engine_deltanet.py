"""Gated DeltaNet layers (qwen35) keep a recurrent state, not a cache per position: going back
(Regenerate, an edited message, a prompt that differs from the cached tokens) resumes from a
snapshot of that state, and gives what a model computing everything afresh gives."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from chatgui.engine import SamplingSettings
from chatgui.engine.chat_model import load_model
from chatgui.engine.deltanet import MAX_SNAPSHOTS, RecurrentState, _chunked, _recurrent, _step
from chatgui.common.prompt import PromptMessage

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_arch_reference import write_case  # noqa: E402

GREEDY = SamplingSettings(temperature=0, max_new_tokens=8, repeat_penalty=1.0)


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("qwen35"), "qwen35", "F32")


def feed_starts(m) -> list[int]:
    """Record the start position of every computation the chat model does."""
    starts: list[int] = []
    feed = m._feed
    m._feed = lambda ids, start, cancel=None, last_only=True, logits=True: starts.append(start) or feed(
        ids, start, cancel, last_only, logits)
    return starts


def reply(m, chat) -> list[int]:
    return [e.token_id for e in m.generate(chat, GREEDY)]


def answered(m, chat, question: str) -> list[dict]:
    """chat with the model's reply to it and the next question."""
    g = m.generate(chat, GREEDY)
    list(g)
    return chat + [PromptMessage.assistant(g.text), PromptMessage.user(question)]


def test_regenerate_resumes_from_the_snapshot_before_the_prompt_end(path):
    m = load_model(path, device="cpu", precision="float32")
    chat = [PromptMessage.user("Hello there, the one")]
    first = reply(m, chat)
    prompt_len = len(m.fit_reply_prompt(chat, GREEDY.max_new_tokens)[0])
    starts = feed_starts(m)
    assert reply(m, chat) == first
    # the state had moved on to the reply's end; it went back to the snapshot at the end of the
    # prompt's first pass (all but its last token, which the chat model computes alone)
    assert starts[0] == prompt_len - 1


def test_an_edited_message_resumes_at_an_earlier_turn_and_equals_a_fresh_model(path, monkeypatch):
    from chatgui.engine import chat_model

    monkeypatch.setattr(chat_model, "PREFILL_CHUNK", 16)    # chunk boundaries (snapshots) in the first turn
    m = load_model(path, device="cpu", precision="float32")
    chat = [PromptMessage.user("Hello there")]
    chat = answered(m, answered(m, chat, "the rest"), "in a")
    reply(m, chat)
    edited = chat[:2] + [PromptMessage.user("the other one")]     # a branch at the second question
    starts = feed_starts(m)
    branched = reply(m, edited)
    assert 0 < starts[0] < len(m.fit_reply_prompt(edited, 8)[0]) - 1   # from a snapshot of the first turn
    assert branched == reply(load_model(path, device="cpu", precision="float32"), edited)
    assert [e.prob for e in m.generate(edited, GREEDY)] == \
        [e.prob for e in load_model(path, device="cpu", precision="float32").generate(edited, GREEDY)]


def test_any_prefix_gives_the_logits_of_a_fresh_pass(path):
    """Positions between snapshots: _prefill goes back to the nearest one before them."""
    m = load_model(path, device="cpu", precision="float32")
    ids = m.tokenize("the in on the er the s a the Hello World, the same the other one " * 2)
    m._prefill(ids[:30])
    m._prefill(ids[:50])
    fresh = load_model(path, device="cpu", precision="float32")
    for cut in (41, 30, 12, 49):
        got = m._prefill(ids[:cut])
        torch.testing.assert_close(got, fresh.net(torch.tensor([ids[:cut]]), 0)[0, -1], rtol=1e-4, atol=1e-4)


def test_the_state_refuses_a_position_it_has_no_snapshot_of():
    state = RecurrentState(1, 8, 4, 2, 4, 4, "cpu")
    state.pos = 10
    with pytest.raises(ValueError, match="cannot resume at position 5"):
        state.seek(5)
    for p in range(2 * MAX_SNAPSHOTS):
        state.snapshot(p + 1, state.conv, state.ssm)
    assert len(state.snapshots) == MAX_SNAPSHOTS          # the oldest go
    state.seek(2 * MAX_SNAPSHOTS - 3)
    assert max(state.snapshots) == 2 * MAX_SNAPSHOTS - 3   # the ones past it belonged to other tokens


def test_batched_candidates_after_a_turn_equal_single_replies(path):
    from chatgui.engine.batch import generate_batch

    m = load_model(path, device="cpu", precision="float32")
    chat = [PromptMessage.user("Hello there")]
    chat = answered(m, chat, "on the")
    batch = generate_batch(m, chat, GREEDY, 3)
    list(batch.events())
    single = reply(load_model(path, device="cpu", precision="float32"), chat)
    assert [c.token_ids for c in batch.choices] == [single] * 3
    assert reply(m, chat) == single      # the model's own state is still the prompt's after the batch


@pytest.mark.parametrize("T", [5, 64, 150])
def test_chunked_prompt_equals_the_step_by_step_rule(T):
    """The chunked form (prompts) gives the outputs and state of one position at a time, from a
    state that is not zero, with grouped heads and a last chunk that is not full."""
    g = torch.Generator().manual_seed(T)
    B, H, d = 2, 4, 16
    q, k = (torch.nn.functional.normalize(torch.randn(B, T, H, d, generator=g), dim=-1) for _ in range(2))
    v = torch.randn(B, T, H, d, generator=g)
    log_decay, beta = -torch.rand(B, T, H, generator=g), torch.rand(B, T, H, generator=g)
    state = torch.randn(B, H, d, d, generator=g)
    out, final = _recurrent(q / 4, k, v, log_decay, beta, state)
    out_c, final_c = _chunked(q / 4, k, v, log_decay, beta, state)
    torch.testing.assert_close(out_c, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(final_c, final, rtol=1e-5, atol=1e-5)


def test_the_one_position_step_is_the_step_by_step_rule():
    """The decode step (deltanet._step: the rule rearranged to read and write the state once, in
    place) against _recurrent, the rule as defined, over 200 positions from a state that is not
    zero: outputs and state agree within float32 rounding, carried over every position."""
    g = torch.Generator().manual_seed(7)
    B, T, H, d = 2, 200, 4, 32
    q, k = (torch.nn.functional.normalize(torch.randn(B, T, H, d, generator=g), dim=-1) for _ in range(2))
    v = torch.randn(B, T, H, d, generator=g)
    log_decay, beta = -torch.rand(B, T, H, generator=g), torch.rand(B, T, H, generator=g)
    state = torch.randn(B, H, d, d, generator=g)
    expected, final = _recurrent(q / 4, k, v, log_decay, beta, state)
    S = state.clone()
    got = torch.stack([_step(q[:, t] / 4, k[:, t], v[:, t], log_decay[:, t], beta[:, t], S) for t in range(T)], 1)
    # (measured: at most 9e-8 off on values of order 1; the bound leaves 100x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(S, final, rtol=1e-5, atol=1e-5)

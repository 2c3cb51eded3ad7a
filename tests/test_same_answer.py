"""The same answer whatever the cache holds (issue 33): a reply is token-identical, with the same
probabilities to the last bit, whether its prompt was computed fresh, cached whole (Regenerate,
Replay) or cached in part (a new turn after the previous one, a chat computed ahead by prepare),
and a reply branched from one of its tokens continues as the reply did. On each family of
layers: plain attention (llama), sliding windows (gemma3), Gated DeltaNet (qwen35), short
convolutions (lfm2) and experts (qwen3moe), on the PyTorch fallback and the best native kernel
path this CPU has; llama on every native path. Each fails without ChatModel._prefill's schedule
(lfm2 excepted: at these shapes its ops happen to give a row the same bits in any pass)."""
from __future__ import annotations

import pytest

from chatgui.engine import SamplingSettings, load_model, native, native_linear
from chatgui.engine.chat_model import PREFILL_CHUNK
from chatgui.common.prompt import PromptMessage
from tiny_gguf import write_tiny_model

PATHS = ["pytorch"] + [p for p in ("portable", "avx2", "avx512") if native.available() and native.supports(p)]
FAMILIES = ["llama", "gemma3", "qwen35", "lfm2", "qwen3moe"]
# Every family on the PyTorch forms and the best native path; the other native paths with llama
# (their GEMM and GEMV differ as the best one's do; the layer kinds add nothing path-specific).
CASES = [(path, arch) for arch in FAMILIES for path in dict.fromkeys(["pytorch", PATHS[-1]])] + \
    [(path, "llama") for path in PATHS[1:-1]]
GREEDY = SamplingSettings(temperature=0, max_new_tokens=12, repeat_penalty=1.0)
SEEDED = SamplingSettings(temperature=1.0, seed=1234, max_new_tokens=12)
QUESTION = [PromptMessage.user("tell me about the lighthouse on the hill " * 12)]   # > PREFILL_CHUNK


@pytest.fixture(params=PATHS)
def on_path(request, monkeypatch):
    """Load models on one kernel path (the native library's, or PyTorch's forms)."""
    if request.param == "pytorch":
        monkeypatch.setattr(native_linear, "usable", lambda *args, **kwargs: False)
        yield request.param
        return
    native.select(request.param)
    try:
        yield request.param
    finally:
        native.select(None)


def reply(m, chat, settings=GREEDY, **options) -> list[tuple]:
    """Each token of the reply with the probabilities it was drawn from, exactly."""
    return [(e.token_id, e.prob, tuple(a.prob for a in e.alternatives)) for e in m.generate(chat, settings, **options)]


def cold(m):
    m._cache_ids = []         # nothing cached: every position computed afresh
    return m


def turn(m, chat, settings=GREEDY) -> list[dict]:
    g = m.generate(chat, settings)
    list(g)
    return chat + [PromptMessage.assistant(g.text), PromptMessage.user("and the other one?")]


@pytest.mark.parametrize(("on_path", "arch"), CASES, indirect=["on_path"])
def test_a_reply_is_the_same_whatever_the_cache_holds(tmp_path, on_path, arch):
    # (three layers: lfm2's third is attention, the first two short convolutions)
    m = load_model(write_tiny_model(tmp_path / "m.gguf", arch=arch, qtype="Q8_0", context=512, n_layers=3),
                   device="cpu")
    assert len(m.fit_reply_prompt(QUESTION, 12)[0]) > PREFILL_CHUNK
    # Regenerate: the whole prompt and the previous reply cached
    fresh = reply(cold(m), QUESTION)
    assert reply(m, QUESTION) == fresh
    # a seeded reply, twice (Replay), and once more computed afresh
    seeded = reply(m, QUESTION, SEEDED)
    assert reply(m, QUESTION, SEEDED) == seeded == reply(cold(m), QUESTION, SEEDED)
    # a second turn: fresh, after the first turn (the previous prompt and reply cached), after
    # prepare (the chat computed ahead), and after an unrelated chat
    second = turn(cold(m), QUESTION)
    second_fresh = reply(cold(m), second)
    turn(cold(m), QUESTION)
    assert reply(m, second) == second_fresh
    m.prepare(second[:-1], 12)
    assert reply(m, second) == second_fresh
    reply(cold(m), [PromptMessage.user("something else")])
    assert reply(m, second) == second_fresh
    # branching from the reply's fifth token continues as the reply did, cached or not
    ids = [t for t, _, _ in fresh]
    assert reply(m, QUESTION, reply_prefix_ids=ids[:5])[:len(fresh) - 5] == fresh[5:]
    assert reply(cold(m), QUESTION, reply_prefix_ids=ids[:5])[:len(fresh) - 5] == fresh[5:]


def test_the_inspector_shows_the_numbers_the_reply_was_drawn_from(tmp_path, on_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0", context=512), device="cpu")
    events = list(m.generate(QUESTION, GREEDY))
    for k, model in ((0, m), (4, m), (4, cold(m))):
        probs = model.next_token_logits(QUESTION, [e.token_id for e in events[:k]]).softmax(-1)
        assert float(probs[events[k].token_id]) == events[k].prob


def test_candidates_decoded_together_are_the_same_whatever_the_cache_holds(tmp_path, on_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", qtype="Q8_0", context=512), device="cpu")

    def candidates():
        batch = m.generate_candidates(QUESTION, SEEDED, 3)
        return [(i, e.token_id, e.prob) for i, e in batch.events() if e is not None]

    fresh = candidates()
    assert candidates() == fresh       # the prompt cached
    cold(m)
    assert candidates() == fresh

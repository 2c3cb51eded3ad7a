"""Generation on tiny models: events, seeds, cancel, stop strings, context fitting."""
from __future__ import annotations

import threading

import pytest
import torch

from chatgui.engine import PromptTooLongError, SamplingSettings, load_model
from chatgui.engine.chat_model import PREFILL_CHUNK, _split_stop
from chatgui.common.prompt import PromptMessage
from tiny_gguf import write_tiny_model

CHAT = [PromptMessage.user("hello there")]


def run(model, settings, messages=CHAT, cancel=None):
    g = model.generate(messages, settings, cancel=cancel)
    events = list(g)
    return g, events


def test_events_carry_probabilities_and_alternatives(tiny_model):
    g, events = run(tiny_model, SamplingSettings(seed=3, max_new_tokens=12, temperature=0.8))
    assert 0 < len(events) <= 12
    for i, e in enumerate(events):
        assert e.index == i
        assert 0 < e.prob <= 1 and 0 < e.sampled_prob <= 1
        assert 1 <= len(e.alternatives) <= 5 and 1 <= len(e.sampled_alternatives) <= 5
        probs = [a.prob for a in e.alternatives]
        assert probs == sorted(probs, reverse=True)
        tid, text, p = e.alternatives[0]      # unpacks like (token_id, text, prob)
        assert isinstance(tid, int) and isinstance(text, str)
        assert e.prob <= e.alternatives[0].prob + 1e-6
    streamed = "".join(e.text for e in events)
    assert g.text == tiny_model.detokenize([e.token_id for e in events], skip_special=True)
    assert g.text.startswith(streamed)     # the stream may only hold back an unfinished character
    assert g.stats.generated_tokens == len(events) and g.stats.seed == 3
    assert g.stats.prompt_tokens == len(tiny_model.tokenize(tiny_model.render_chat(CHAT)))


def test_same_seed_same_answer_and_different_seed_differs(tiny_model):
    s = SamplingSettings(seed=11, max_new_tokens=30, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    a = [e.token_id for e in run(tiny_model, s)[1]]
    b = [e.token_id for e in run(tiny_model, s)[1]]
    c = [e.token_id for e in run(tiny_model, s.with_(seed=12))[1]]
    assert a == b and a != c


def test_random_seed_is_reported_and_replays(tiny_model):
    s = SamplingSettings(seed=None, max_new_tokens=20, temperature=1.0)
    g, ev = run(tiny_model, s)
    g2, ev2 = run(tiny_model, s.with_(seed=g.stats.seed))
    assert [e.token_id for e in ev] == [e.token_id for e in ev2]


def test_greedy_matches_argmax_of_logprobs(tiny_model):
    g, events = run(tiny_model, SamplingSettings(temperature=0, max_new_tokens=8, repeat_penalty=1.0))
    ids = list(g.prompt_ids)
    for e in events:
        assert e.token_id == int(tiny_model.logprobs(ids)[-1].argmax())
        ids.append(e.token_id)


def test_cancel_between_tokens(tiny_model):
    cancel = threading.Event()
    g = tiny_model.generate(CHAT, SamplingSettings(seed=1, max_new_tokens=200), cancel=cancel)
    got = []
    for e in g:
        got.append(e)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3 and g.stats.finish_reason == "cancelled"
    # A cancel set before the start stops during prefill: no token at all.
    g2 = tiny_model.generate(CHAT, SamplingSettings(seed=1), cancel=cancel)
    assert list(g2) == [] and g2.stats.finish_reason == "cancelled"


def test_stops_at_end_of_turn_token(tmp_path, monkeypatch):
    m = load_model(write_tiny_model(tmp_path / "m.gguf"), device="cpu")
    forward = m.net.forward
    fourth = len(m.fit_reply_prompt(CHAT, 50)[0]) + 3      # the position the fourth token is fed at

    def forward_that_ends_the_turn(tokens, input_pos, last_only=False, logits=True):
        out = forward(tokens, input_pos, last_only=last_only, logits=logits)
        if out is None:                  # (a prompt chunk that computes no logits)
            return None
        logits = out.clone()
        if int(input_pos) >= fourth:     # after four tokens, <|im_end|> (id 2) wins
            logits[..., 2] = 1e4
        return logits

    monkeypatch.setattr(m.net, "forward", forward_that_ends_the_turn)
    g, events = run(m, SamplingSettings(temperature=0, max_new_tokens=50))
    assert g.stats.finish_reason == "stop" and len(events) == 4
    assert all(e.token_id != 2 for e in events)
    assert m.tok.stop_ids >= {2}


def test_stop_strings():
    assert _split_stop("hello wor", ["world"]) == ("hello ", "wor", False)
    assert _split_stop("hello world!", ["world"]) == ("hello ", "", True)
    assert _split_stop("abc", []) == ("abc", "", False)
    assert _split_stop("abc", ["xyz"]) == ("abc", "", False)
    assert _split_stop("a<|im_end|>b STOP", ["STOP", "<|im_end|>"]) == ("a", "", True)   # the earliest


def test_stop_string_ends_generation(tiny_model):
    s = SamplingSettings(seed=5, max_new_tokens=40, temperature=1.0)
    full = run(tiny_model, s)[0].text
    assert len(full) > 6
    stop = full[3:6]
    g, events = run(tiny_model, s.with_(stop=(stop,)))
    assert g.stats.finish_reason == "stop_string"
    assert g.text == full[:full.index(stop)] and stop not in g.text


def test_a_base_model_chatted_in_chatml_stops_at_the_markers_it_writes_as_text(tmp_path, monkeypatch):
    """A file without a chat template gets ChatML; where its vocabulary has no <|im_end|> token
    (Gemma 3 270M's base file), the markers can only come as text, and end the reply there
    instead of the model going on to write the user's next turn. Not for raw prompts, nor where
    the end of turn is ignored (benchmarks)."""
    import tiny_gguf

    plain = load_model(write_tiny_model(tmp_path / "chatml.gguf", chat_template=None), device="cpu")
    assert plain.template_stops == ()                  # <|im_end|> is a token: a stop id does it
    templated = load_model(write_tiny_model(tmp_path / "t.gguf"), device="cpu")
    assert templated.template_stops == ()
    monkeypatch.setattr(tiny_gguf, "SPECIALS", ["<|endoftext|>", "<s>", "</s>"])
    base = load_model(write_tiny_model(tmp_path / "base.gguf", chat_template=None), device="cpu")
    assert base.template_stops == ("<|im_end|>", "<|im_start|>")
    # the random model does not write "<|im_end|>": stand in a text it does write for the marker
    s = SamplingSettings(seed=5, max_new_tokens=40, temperature=1.0)
    full = run(base, s)[0].text
    base.template_stops = (full[3:6],)
    g = run(base, s)[0]
    assert g.stats.finish_reason == "stop_string" and g.text == full[:full.index(full[3:6])]
    assert full[3:6] in "".join(e.text for e in base.generate(CHAT, s, ignore_eos=True))
    assert base.generate(None, s, prompt_ids=g.prompt_ids).stops == ()
    base.template_stops = ()
    free = base.generate_candidates(CHAT, s, 2)
    list(free.events())
    target = free.choices[0].text
    base.template_stops = (target[3:6],)
    cut = base.generate_candidates(CHAT, s, 2)
    list(cut.events())
    assert cut.choices[0].text == target[:target.index(target[3:6])]
    assert cut.choices[0].stats.finish_reason == "stop_string"


def test_context_drops_oldest_turns_keeps_system(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", context=256), device="cpu")
    msgs = [PromptMessage.system("sys prompt")]
    for i in range(12):
        msgs += [PromptMessage.user(f"question number {i} " * 3),
                 PromptMessage.assistant(f"answer number {i} " * 3)]
    msgs.append(PromptMessage.user("last question"))
    g = m.generate(msgs, SamplingSettings(max_new_tokens=64, seed=0))
    assert g.dropped_messages > 0 and g.dropped_messages % 2 == 0
    prompt = m.detokenize(g.prompt_ids)
    assert prompt.startswith("<|im_start|>system\nsys prompt") and "last question" in prompt
    assert "question number 0 " not in prompt
    assert len(g.prompt_ids) + 64 <= m.context_length
    list(g)


def test_prompt_too_long_is_a_clear_error(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", context=128), device="cpu")
    with pytest.raises(PromptTooLongError, match="too long"):
        m.generate([PromptMessage.user("word " * 500)], SamplingSettings())


def test_max_new_tokens_capped_by_context(tmp_path):
    m = load_model(write_tiny_model(tmp_path / "m.gguf", context=64), device="cpu")
    g = m.generate([PromptMessage.user("hi")], SamplingSettings(max_new_tokens=1000, temperature=0,
                                                                          repeat_penalty=1.0))
    events = list(g)
    assert len(g.prompt_ids) + len(events) <= 64


def test_kv_prefix_reuse_gives_same_result(tiny_model):
    s = SamplingSettings(seed=9, max_new_tokens=10)
    first = run(tiny_model, s)[0]
    follow = CHAT + [PromptMessage.assistant(first.text), PromptMessage.user("more")]
    a = [e.token_id for e in run(tiny_model, s, follow)[1]]
    tiny_model._cache_ids = []           # cold cache: everything recomputed
    b = [e.token_id for e in run(tiny_model, s, follow)[1]]
    assert a == b


def test_reply_prefix_continues_from_a_chosen_token(tiny_model):
    """Branching from a token: the reply starts with the chosen tokens and continues from them,
    exactly as if the model had sampled them itself."""
    s = SamplingSettings(temperature=0, max_new_tokens=10, repeat_penalty=1.0)
    base = run(tiny_model, s)[1]
    alt = base[2].alternatives[1].token_id          # the runner-up at the third token
    prefix = [base[0].token_id, base[1].token_id, alt]
    g = tiny_model.generate(CHAT, s, reply_prefix_ids=prefix)
    events = list(g)
    assert events[0].index == 3
    assert g.token_ids[:3] == prefix
    assert g.text == tiny_model.detokenize(g.token_ids, skip_special=True)
    # Greedy continuation from the same prefix is what the model predicts after it.
    prompt = g.prompt_ids + prefix
    assert events[0].token_id == int(tiny_model.logprobs(prompt)[-1].argmax())
    torch_logits = tiny_model.next_token_logits(CHAT, prefix)
    assert int(torch_logits.argmax()) == events[0].token_id


def test_held_back_stop_prefix_is_kept_when_reply_ends(tiny_model):
    s = SamplingSettings(seed=5, max_new_tokens=40, temperature=1.0)
    full = run(tiny_model, s)[0].text
    last = full[-1]
    g, events = run(tiny_model, s.with_(stop=(last + "\u2603never",)))   # starts like the text's end
    assert g.text == full


def test_the_next_turn_reuses_what_a_cold_computation_computes_the_same_way(tmp_path, monkeypatch):
    """The next turn reuses the cache up to the end of the previous question's turn (where a pass
    ends in every schedule: ChatModel._prefill), not into the previous reply (decoded a token at
    a time, where a cold computation computes it in a chunk), and gives the logits a cold
    computation gives, to the last bit."""
    tiny_model = load_model(write_tiny_model(tmp_path / "m.gguf", context=1024), device="cpu")
    long_chat = [PromptMessage.user("tell me " * 100)]
    s = SamplingSettings(seed=21, max_new_tokens=30, temperature=0.9)
    tiny_model._cache_ids = []
    first = run(tiny_model, s, long_chat)[0]
    follow = long_chat + [PromptMessage.assistant(first.text), PromptMessage.user("again")]
    ids = tiny_model.tokenize(tiny_model.render_chat(follow))
    before = len(tiny_model.tokenize(tiny_model.render_chat(long_chat, add_generation_prompt=True)))
    assert before > PREFILL_CHUNK       # spans several prefill chunks
    fed = []
    feed = tiny_model._feed
    monkeypatch.setattr(tiny_model, "_feed", lambda part, start, *a, **k: fed.append((start, len(part))) or
                        feed(part, start, *a, **k))
    warm = tiny_model._prefill(ids)
    question_end = max(i for i in range(before - 1) if ids[i] in tiny_model.tok.stop_ids) + 1
    assert fed[0][0] == question_end and fed[-1] == (len(ids) - 1, 1)   # then the last token alone
    monkeypatch.undo()
    tiny_model._cache_ids = []
    assert torch.equal(warm, tiny_model._prefill(ids))


def test_prepare_computes_the_chat_ahead_so_sending_computes_only_the_new_message(tmp_path, monkeypatch):
    model = load_model(write_tiny_model(tmp_path / "m.gguf", context=1024), device="cpu")
    chat = [PromptMessage.system("be brief")]
    for i in range(6):
        chat += [PromptMessage.user(f"question {i} " + "tell me " * 10),
                 PromptMessage.assistant(f"answer {i} " + "a lighthouse " * 10)]
    model._cache_ids = []
    cached = model.prepare(chat, 32)
    assert cached > 128
    fed = []
    feed = model._feed
    monkeypatch.setattr(model, "_feed", lambda part, start, *a, **k: fed.append((start, len(part))) or
                        feed(part, start, *a, **k))
    ids, _ = model.fit_reply_prompt(chat + [PromptMessage.user("and the next question?")], 32)
    common = next(i for i, (a, b) in enumerate(zip(model._cache_ids + [-1], ids)) if a != b)
    model._prefill(ids)
    # from the end of the last reply: the new message and the reply's opening only, its last token alone
    reply_end = max(i for i in range(common) if ids[i] in model.tok.stop_ids) + 1
    assert fed[0][0] == reply_end >= cached - 24 and sum(n for _, n in fed) < 40 and fed[-1] == (len(ids) - 1, 1)


def test_prepare_stops_when_cancelled_and_keeps_what_it_computed(tmp_path):
    model = load_model(write_tiny_model(tmp_path / "m.gguf", context=1024), device="cpu")
    chat = [PromptMessage.user(" ".join(str(i) for i in range(120))), PromptMessage.assistant("no")]
    assert 300 < len(model.tokenize(model.render_chat(chat))) < 800   # several chunks; fits the context
    cancel = threading.Event()
    calls = []
    net = model.net

    class Stopper(torch.nn.Module):   # cancels after the first prefill chunk
        def forward(self, *a, **k):
            calls.append(1)
            cancel.set()
            return net(*a, **k)

        def resumable(self, start):
            return net.resumable(start)

    model.net = Stopper()
    model._cache_ids = []
    assert model.prepare(chat, 16, cancel) == 128 and len(calls) == 1
    model.net = net
    assert model.prepare(chat, 16) > 300   # resumed: goes on from there


def test_a_long_prompt_computes_the_output_head_once(tmp_path, monkeypatch):
    """The prompt's chunks before its last token only fill the cache: the head (a 262k-token
    vocabulary's costs as much as a few layers) runs for the last token alone, and the reply
    is what it was when every chunk computed it."""
    m = load_model(write_tiny_model(tmp_path / "m.gguf", context=1024), device="cpu")
    chat = [PromptMessage.user("word " * 70)]
    settings = SamplingSettings(temperature=0, max_new_tokens=4)
    head, calls = m.net.output.forward, []
    monkeypatch.setattr(m.net.output, "forward", lambda x: calls.append(x.shape[-2]) or head(x))
    assert len(m.fit_reply_prompt(chat, 4)[0]) > 2 * PREFILL_CHUNK
    text = "".join(e.text for e in m.generate(chat, settings, ignore_eos=True))
    assert calls == [1, 1, 1, 1]            # the prompt's last token, then each decoded one
    monkeypatch.setattr(m.net.output, "forward", head)
    m._cache_ids, m._cache_runs = [], []
    forward = m.net.forward
    m.net.forward = lambda tokens, pos, last_only=False, logits=True: forward(tokens, pos, last_only)
    assert "".join(e.text for e in m.generate(chat, settings, ignore_eos=True)) == text

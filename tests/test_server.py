"""The API server in-process (start_server on 127.0.0.1, port 0), spoken to with raw httpx so
that the wire format itself is checked: chunks, [DONE], usage, error shapes, the queue."""
from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from slow_model import SlowModel, wait_until

from chatgui.engine import load_model
from chatgui.server import start_server

HI = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def server(tiny_model_path):
    # A model of its own: the server's thread must be the only one using it.
    with start_server(lambda: load_model(tiny_model_path, device="cpu")) as handle:
        yield handle


def post(server, body, **kw) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return httpx.post(server.url + "/chat/completions", content=content, timeout=30, headers=headers, **kw)


def sse_payloads(response: httpx.Response) -> list:
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines), lines
    return [line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]) for line in lines]


def assert_openai_error(response: httpx.Response, status: int, code=None) -> dict:
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) >= {"message", "type", "code"} and err["message"]
    if code:
        assert err["code"] == code
    return err


# -- the happy path -----------------------------------------------------------------------
def test_port_zero_picks_a_free_port_and_models_lists_the_model(server):
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/v1"
    body = httpx.get(server.url + "/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["tiny"]
    assert httpx.get(server.url + "/models/tiny").json()["id"] == "tiny"


def test_a_completion_reports_text_finish_reason_and_usage(server):
    r = post(server, {"model": "tiny", "messages": HI, "max_tokens": 6, "temperature": 0})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "tiny"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_streaming_sends_openai_chunks_usage_and_done(server):
    r = post(server, {"model": "tiny", "messages": HI, "max_tokens": 5, "temperature": 0, "stream": True,
                      "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(r)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk, final = chunks[-1], chunks[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 5
    assert final["choices"][0]["finish_reason"] == "length"
    assert all(c["usage"] is None for c in chunks[:-1])


def test_a_stream_without_include_usage_has_no_usage(server):
    r = post(server, {"messages": HI, "max_tokens": 3, "stream": True})
    chunks = sse_payloads(r)[:-1]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_seed_makes_sampling_repeatable(server):
    body = {"messages": HI, "max_tokens": 8, "temperature": 1.0, "seed": 1234}
    texts = {post(server, body).json()["choices"][0]["message"]["content"] for _ in range(2)}
    assert len(texts) == 1


# -- refusals in OpenAI's error shape -----------------------------------------------------
def test_bad_json_is_400(server):
    assert_openai_error(post(server, b'{"messages": [oops'), 400, "invalid_json")


@pytest.mark.parametrize("body, param", [
    ([1, 2], None),
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "temperature": 9}, "temperature"),
    ({"messages": HI, "max_tokens": 0}, "max_tokens"),
    ({"messages": HI, "max_tokens": True}, "max_tokens"),
    ({"messages": HI, "stop": 3}, "stop"),
    ({"messages": HI, "n": 0}, "n"),
    ({"messages": HI, "n": 9}, "n"),
    ({"messages": HI, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"messages": HI, "top_logprobs": 2}, "top_logprobs"),
    ({"messages": HI, "stop": [f"s{i}" for i in range(100)]}, "stop"),
    ({"messages": HI, "presence_penalty": 0.5}, "presence_penalty"),
    ({"messages": HI, "logit_bias": {"1": 5}}, "logit_bias"),
    ({"messages": HI, "frobnicate": 1}, "frobnicate"),
    ({"messages": HI, "response_format": {"type": "xml"}}, "response_format"),
    ({"messages": HI, "stream": "yes"}, "stream"),
    ({"messages": HI, "dry_multiplier": "x"}, "dry_multiplier"),
    ({"messages": HI, "dry_sequence_breakers": "\n"}, "dry_sequence_breakers"),
    ({"messages": HI, "xtc_threshold": 2}, "xtc_threshold"),
    ({"messages": HI, "repetition_penalty": 0}, "repetition_penalty"),
])
def test_invalid_fields_are_400_naming_the_field(server, body, param):
    err = assert_openai_error(post(server, body), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"


def test_the_sampler_registry_fields_are_read_from_a_request():
    from chatgui.server.protocol import parse_chat_request
    request = parse_chat_request({"messages": HI, "dry_multiplier": 0.8, "dry_allowed_length": 3,
                                  "dry_sequence_breakers": ["\n", "##"], "xtc_probability": 0.5,
                                  "repetition_penalty": 1.3, "top_k": 7}, 4096)
    s = request.settings
    assert (s.dry_multiplier, s.dry_allowed_length, s.dry_sequence_breakers) == (0.8, 3, ("\n", "##"))
    assert (s.xtc_probability, s.xtc_threshold, s.repeat_penalty, s.top_k) == (0.5, 0.1, 1.3, 7)
    assert parse_chat_request({"messages": HI}, 4096).settings.dry_multiplier == 0.0     # off by default


def test_an_unknown_model_is_404(server):
    err = assert_openai_error(post(server, {"model": "gpt-9", "messages": HI}), 404, "model_not_found")
    assert "gpt-9" in err["message"] and "tiny" in err["message"]
    assert_openai_error(httpx.get(server.url + "/models/gpt-9"), 404, "model_not_found")


def test_a_prompt_longer_than_the_context_is_400_with_a_clear_message(server):
    for stream in (False, True):
        r = post(server, {"messages": [{"role": "user", "content": "word " * 400}], "stream": stream})
        err = assert_openai_error(r, 400, "context_length_exceeded")
        assert "too long" in err["message"] and "256" in err["message"]


def test_unknown_routes_and_methods_answer_in_the_error_shape(server):
    assert_openai_error(httpx.get(server.url + "/completions-of-the-future"), 404)
    assert_openai_error(httpx.get(server.url + "/chat/completions"), 405)


def test_the_server_still_answers_after_all_that(server):
    assert post(server, {"messages": HI, "max_tokens": 2}).status_code == 200


# -- timing-controlled tests on a fake model (slow_model.py) ----------------------------
def test_a_full_queue_answers_503_and_the_others_are_served_in_turn():
    model = SlowModel(tokens=3)
    model.release.clear()
    with start_server(model, max_waiting=1) as handle:
        results = {}

        def ask(name):
            results[name] = post(handle, {"messages": HI})

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        wait_until(lambda: handle.busy)                   # first is being answered (held)
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        wait_until(lambda: handle.waiting == 1)           # second waits its turn
        err = assert_openai_error(post(handle, {"messages": HI}), 503, "queue_full")
        assert "busy" in err["message"]
        model.release.set()
        first.join(10), second.join(10)
        assert [results[k].json()["choices"][0]["message"]["content"] for k in ("first", "second")] == ["xxx", "xxx"]


def test_a_client_that_disconnects_mid_stream_cancels_its_generation():
    model = SlowModel()
    with start_server(model) as handle:
        with httpx.stream("POST", handle.url + "/chat/completions", json={"messages": HI, "stream": True}) as r:
            lines = r.iter_lines()
            got = [line for _, line in zip(range(6), lines) if line]
            assert len(got) == 3
        t = time.monotonic()
        assert model.cancelled.wait(3), "the generation went on after the client left"
        assert time.monotonic() - t < 2
        # ...and the server is free for the next request at once.
        model.tokens = 2
        assert post(handle, {"messages": HI}).json()["choices"][0]["message"]["content"] == "xx"


def test_a_client_that_gives_up_while_waiting_frees_its_place():
    model = SlowModel(tokens=2)
    model.release.clear()
    with start_server(model, max_waiting=1) as handle:
        holder = threading.Thread(target=post, args=(handle, {"messages": HI}))
        holder.start()
        wait_until(lambda: handle.busy)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(handle.url + "/chat/completions", json={"messages": HI}, timeout=0.3)
        wait_until(lambda: handle.waiting == 0)   # noticed the client left
        model.release.set()
        holder.join(10)
        assert len(model.started) == 1            # the abandoned request never ran


def test_an_api_key_is_required_when_set(tiny_model_path):
    with start_server(SlowModel(tokens=1), api_key="s3cret") as handle:
        assert_openai_error(httpx.get(handle.url + "/models"), 401, "invalid_api_key")
        assert_openai_error(httpx.get(handle.url + "/models", headers={"Authorization": "Bearer nope"}), 401)
        ok = httpx.get(handle.url + "/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_stop_cancels_the_running_reply_and_closes_the_port():
    model = SlowModel()
    handle = start_server(model)
    port = handle.port
    with httpx.stream("POST", handle.url + "/chat/completions", json={"messages": HI, "stream": True}) as r:
        lines = r.iter_lines()
        next(lines)
        t = time.monotonic()
        handle.stop()
        assert time.monotonic() - t < 4
        tail = "\n".join(lines)
    assert model.cancelled.is_set() and "shutting down" in tail
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    handle.stop()    # twice is harmless


def test_what_a_backend_does_not_declare_is_a_400_not_a_crash():
    """The server asks the backend's capabilities: a model without token probabilities or JSON
    constraints refuses logprobs and response_format plainly, and still answers a plain request."""
    with start_server(SlowModel(tokens=2)) as handle:
        err = assert_openai_error(post(handle, {"messages": HI, "logprobs": True, "top_logprobs": 1}), 400,
                                  "unsupported_value")
        assert err["param"] == "logprobs"
        err = assert_openai_error(post(handle, {"messages": HI, "response_format": {"type": "json_object"}}), 400,
                                  "unsupported_value")
        assert err["param"] == "response_format"
        assert post(handle, {"messages": HI}).json()["choices"][0]["message"]["content"] == "xx"
        assert handle.model_name == "slow"


def test_the_served_id_is_the_file_name(server, tiny_model_path):
    from pathlib import Path
    ids = [m["id"] for m in httpx.get(server.url + "/models").json()["data"]]
    assert ids == [Path(tiny_model_path).stem]


# -- hostile requests (issue 29, cases 8 and 12) -----------------------------------------------
ENDLESS = {"$ref": "#/$defs/a", "$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}},
                                                "required": ["x"], "additionalProperties": False}}}


def schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def test_a_schema_the_grammar_engine_gives_up_on_is_a_400_before_generating(server):
    # Before: 200, content "{" and finish_reason "stop".
    r = post(server, {"messages": HI, "max_tokens": 20, "response_format": schema_format(ENDLESS)})
    err = assert_openai_error(r, 400, "invalid_schema")
    assert err["param"] == "response_format" and "too complex" in err["message"] and "<state>" not in err["message"]


class BreaksItsGrammar:
    """The tiny model, whose JSON constraints break after two tokens (as llguidance's parser
    does past one of its limits, in a place no dry run reaches)."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def json_constraint(self, schema=None):
        from test_constrained import FailsAfter
        return FailsAfter(self._model.json_constraint(schema), 2)


def test_a_grammar_failure_mid_reply_is_finish_reason_error_not_stop(tiny_model_path):
    with start_server(lambda: BreaksItsGrammar(load_model(tiny_model_path, device="cpu"))) as handle:
        body = {"messages": HI, "max_tokens": 20, "response_format": {"type": "json_object"}}
        choice = post(handle, body).json()["choices"][0]
        assert choice["finish_reason"] == "error", choice
        chunks = sse_payloads(post(handle, {**body, "stream": True}))
        assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]][-1] == "error"
        two = post(handle, {**body, "n": 2}).json()["choices"]
        assert [c["finish_reason"] for c in two] == ["error", "error"]


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "user", "content": "a\ud800b"}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]},
    {"messages": HI, "stop": ["\ud83d"]},
], ids=["content", "content-part", "stop"])
def test_a_lone_surrogate_is_a_400_not_a_500(server, body):
    err = assert_openai_error(post(server, {**body, "max_tokens": 2}), 400)
    assert "surrogate" in err["message"] and err["param"] in ("messages", "stop")
    r = httpx.post(server.url + "/completions", content=json.dumps({"prompt": "x\udc00", "max_tokens": 2}),
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert assert_openai_error(r, 400)["param"] == "prompt"


def test_a_vanishingly_small_temperature_is_greedy(server):
    greedy = post(server, {"messages": HI, "max_tokens": 6, "temperature": 0, "repeat_penalty": 1.0}).json()
    assert greedy["choices"][0]["message"]["content"], "the test needs a non-empty greedy reply"
    tiny = post(server, {"messages": HI, "max_tokens": 6, "temperature": 1e-300, "repeat_penalty": 1.0}).json()
    assert tiny["choices"][0]["message"]["content"] == greedy["choices"][0]["message"]["content"]


def test_echo_logprobs_work_in_chunks_not_prompt_by_vocabulary(server, tiny_model, monkeypatch):
    # Before: one log-softmax over prompt x vocabulary floats (+570 MB on SmolLM2 for a long prompt).
    import torch

    from chatgui.engine.chat_model import PREFILL_CHUNK
    prompt = "the cat sat on a mat and " * 11
    ids = tiny_model.tokenize(prompt)
    assert PREFILL_CHUNK < len(ids) < 250
    rows, real = [], torch.log_softmax
    monkeypatch.setattr(torch, "log_softmax", lambda x, *a, **k: (rows.append(x.shape[0] if x.dim() > 1 else 1),
                                                                  real(x, *a, **k))[1])
    r = httpx.post(server.url + "/completions", json={"prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": 3,
                                                      "temperature": 0}, timeout=60)
    monkeypatch.undo()
    assert r.status_code == 200, r.text
    assert rows and max(rows) <= PREFILL_CHUNK, rows
    lp = r.json()["choices"][0]["logprobs"]
    full = tiny_model.logprobs(ids)
    assert lp["token_logprobs"][0] is None and len(lp["token_logprobs"]) >= len(ids)
    for pos in (1, PREFILL_CHUNK - 1, PREFILL_CHUNK, PREFILL_CHUNK + 1, len(ids) - 1):
        assert lp["token_logprobs"][pos] == pytest.approx(float(full[pos - 1, ids[pos]]), abs=1e-4)
        vals, idx = full[pos - 1].topk(3)
        # a dict by token text, as OpenAI's: texts may repeat (partial characters), the last one stays
        expected = {tiny_model.token_text(int(i)): float(v) for v, i in zip(vals, idx)}
        assert lp["top_logprobs"][pos] == pytest.approx(expected, abs=1e-4)


def test_too_many_messages_are_a_400_before_the_model_sees_them(server):
    # Before: 100,000 empty messages were queued and the runner spent ~24 s fitting them.
    from chatgui.server.protocol import MAX_MESSAGES
    t = time.monotonic()
    for n in (MAX_MESSAGES + 1, 100_000):
        err = assert_openai_error(post(server, {"messages": [{"role": "user", "content": ""}] * n, "max_tokens": 1}),
                                  400)
        assert err["param"] == "messages" and f"{MAX_MESSAGES:,}" in err["message"]
    assert time.monotonic() - t < 5
    ok = post(server, {"messages": [{"role": "user", "content": "hi"}] * MAX_MESSAGES, "max_tokens": 1})
    assert ok.status_code == 200, ok.text


def test_a_message_longer_than_the_whole_context_could_hold_is_refused_before_queuing(server, tiny_model):
    # Before: the runner tokenized it all first (8 MB of text: ~2 minutes) to then say "too long".
    from chatgui.engine.token_bytes import model_vocabulary_bytes
    bound = 256 * max(map(len, model_vocabulary_bytes(tiny_model)))      # context x longest token
    t = time.monotonic()
    for body in ({"messages": [{"role": "user", "content": "ab " * 400_000}]},
                 {"messages": [{"role": "system", "content": "s" * (bound // 2)},
                               {"role": "user", "content": "u" * (bound // 2 + 1)}]}):
        err = assert_openai_error(post(server, {**body, "max_tokens": 1}), 400, "context_length_exceeded")
        assert err["param"] == "messages" and "context" in err["message"]
    r = httpx.post(server.url + "/completions", content=json.dumps({"prompt": "ab " * 400_000, "max_tokens": 1}),
                   headers={"Content-Type": "application/json"}, timeout=60)
    assert assert_openai_error(r, 400, "context_length_exceeded")["param"] == "prompt"
    assert time.monotonic() - t < 3
    # Old turns may be as long as they like: they are dropped to fit, as before.
    turns = [{"role": "user", "content": "x" * (2 * bound)}, {"role": "assistant", "content": "y"},
             {"role": "user", "content": "hi"}]
    ok = post(server, {"messages": turns, "max_tokens": 1})
    assert ok.status_code == 200, ok.text

"""The rest of the OpenAI API, through the official `openai` client against a real
`python -m chatgui.server` subprocess: logprobs, /v1/completions, stop, seed, several candidates,
refusals naming the field."""
from __future__ import annotations

import json
import math

import openai
import pytest
from test_server_openai import client, served  # noqa: F401 - the subprocess server and its client

from chatgui.common.prompt import PromptMessage

HI = [{"role": "user", "content": "Hello there"}]
GREEDY = {"temperature": 0, "extra_body": {"repeat_penalty": 1.0}}


def check_logprob_entry(entry, k: int) -> None:
    assert entry.logprob <= 0 and entry.bytes and all(0 <= b < 256 for b in entry.bytes)
    try:
        assert bytes(entry.bytes).decode("utf-8") == entry.token
    except UnicodeDecodeError:      # part of a character: the token's text is U+FFFD
        assert "\ufffd" in entry.token
    assert len(entry.top_logprobs) == k
    values = [t.logprob for t in entry.top_logprobs]
    assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
    assert sum(math.exp(v) for v in values) <= 1.0001


def test_chat_logprobs_are_the_models_own_distribution(client, tiny_model):  # noqa: F811
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, logprobs=True, top_logprobs=3,
                                       **GREEDY)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for entry in content:
        check_logprob_entry(entry, 3)
        # greedy on the raw distribution: the chosen token is the most likely one
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)
    assert "".join(bytes(e.bytes).decode("utf-8", "replace") for e in content).startswith(r.choices[0].message.content)
    # The first token's numbers are what the model computes for the prompt (same file in-process).
    ids, _ = tiny_model.fit_prompt([PromptMessage.from_wire(m) for m in HI], 6)   # as the server reads HI
    row = tiny_model.logprobs(ids)[-1]
    vals, idx = row.topk(3)
    assert [t.token for t in content[0].top_logprobs] == [tiny_model.token_text(int(i)) for i in idx]
    assert [t.logprob for t in content[0].top_logprobs] == pytest.approx(vals.tolist(), abs=2e-3)


def test_streamed_logprobs_match_the_whole_reply(client):  # noqa: F811
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=5, logprobs=True,
                                           top_logprobs=2, **GREEDY)
    chunks = list(client.chat.completions.create(model="tiny", messages=HI, max_tokens=5, logprobs=True,
                                                 top_logprobs=2, stream=True, **GREEDY))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole.choices[0].logprobs.content]
    assert all(len(e.top_logprobs) == 2 for e in streamed)


def test_top_logprobs_zero_and_twenty(client):  # noqa: F811
    for k in (0, 20):
        r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=2, logprobs=True, top_logprobs=k,
                                           **GREEDY)
        assert all(len(e.top_logprobs) == k for e in r.choices[0].logprobs.content)
    plain = client.chat.completions.create(model="tiny", messages=HI, max_tokens=2)
    assert plain.choices[0].logprobs is None


def test_text_completions(client):  # noqa: F811
    r = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=5, logprobs=2, **GREEDY)
    choice = r.choices[0]
    assert r.object == "text_completion" and isinstance(choice.text, str) and choice.finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 5 and r.usage.prompt_tokens > 0
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == r.usage.completion_tokens
    assert all(len(t) <= 2 for t in lp.top_logprobs)
    echoed = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=5, echo=True,
                                       logprobs=1, **GREEDY)
    assert echoed.choices[0].text == "Once upon a time" + choice.text
    lp2 = echoed.choices[0].logprobs
    # The same to bfloat16 precision, not bit for bit: echo scores the reply's tokens in one pass
    # over the whole text (ChatModel.prompt_logprobs), the reply drew them one at a time.
    assert lp2.token_logprobs[0] is None and lp2.token_logprobs[-len(lp.token_logprobs):] == \
        pytest.approx(lp.token_logprobs, abs=2e-2)


def test_a_text_prompt_too_long_names_the_prompt(client):  # noqa: F811
    with pytest.raises(openai.BadRequestError, match="too long") as info:
        client.completions.create(model="tiny", prompt="word " * 400, max_tokens=2)
    assert info.value.param == "prompt" and info.value.code == "context_length_exceeded"


def test_text_completions_stream_with_usage(client):  # noqa: F811
    chunks = list(client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=4, stream=True,
                                            stream_options={"include_usage": True}, **GREEDY))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    whole = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=4, **GREEDY)
    assert text == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stop_seed_and_max_completion_tokens(client):  # noqa: F811
    base = client.chat.completions.create(model="tiny", messages=HI, max_completion_tokens=12, **GREEDY)
    text = base.choices[0].message.content
    assert base.usage.completion_tokens <= 12
    assert len(text) > 3, text
    for stop in (text[2:4], [text[2:4], "\u2603"]):
        r = client.chat.completions.create(model="tiny", messages=HI, max_completion_tokens=12, stop=stop, **GREEDY)
        assert r.choices[0].message.content == text[:text.index(text[2:4])]
        assert r.choices[0].finish_reason == "stop"
    seeded = [client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=1.0,
                                             seed=77).choices[0].message.content for _ in range(2)]
    assert seeded[0] == seeded[1]


@pytest.mark.parametrize("kw, param", [
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"n": 0}, "n"),
    ({"n": 9}, "n"),
    ({"stop": [f"stop{i}" for i in range(100)]}, "stop"),
    ({"frequency_penalty": 1.0}, "frequency_penalty"),
    ({"extra_body": {"mirostat": 2}}, "mirostat"),
])
def test_refusals_name_the_field_and_the_server_keeps_serving(client, kw, param):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=2, **kw)
    assert info.value.param == param
    assert client.chat.completions.create(model="tiny", messages=HI, max_tokens=1).choices


def test_n_candidates_in_one_request(client):  # noqa: F811
    one = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, **GREEDY)
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, n=3, logprobs=True, top_logprobs=1,
                                       **GREEDY)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [c.message.content for c in r.choices] == [one.choices[0].message.content] * 3
    assert all(len(c.logprobs.content) == one.usage.completion_tokens for c in r.choices)
    assert r.usage.completion_tokens == 3 * one.usage.completion_tokens
    sampled = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, n=4, temperature=1.0, seed=3)
    assert len({c.message.content for c in sampled.choices}) > 1


def test_n_candidates_streamed(client):  # noqa: F811
    chunks = list(client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, n=3, temperature=1.0,
                                                 seed=3, stream=True, stream_options={"include_usage": True}))
    texts, finished = ["", "", ""], set()
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    whole = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, n=3, temperature=1.0, seed=3)
    assert texts == [c.message.content for c in whole.choices] and finished == {0, 1, 2}
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    text = client.completions.create(model="tiny", prompt="Once upon", max_tokens=4, n=2, **GREEDY)
    assert [c.index for c in text.choices] == [0, 1] and text.choices[0].text == text.choices[1].text


# -- structured output --------------------------------------------------------------------------
PERSON = {"type": "object", "properties": {"ok": {"type": "boolean"},
                                           "n": {"type": "integer", "minimum": 0, "maximum": 99},
                                           "color": {"enum": ["red", "green"]}},
          "required": ["ok", "n", "color"], "additionalProperties": False}


def schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}


def assert_person(text: str) -> None:
    value = json.loads(text)
    assert set(value) == {"ok", "n", "color"} and isinstance(value["ok"], bool)
    assert isinstance(value["n"], int) and 0 <= value["n"] <= 99 and value["color"] in ("red", "green")


def test_json_schema_replies_parse_and_validate(client):  # noqa: F811
    # A random-weight model: without the constraint its replies are never JSON.
    for seed in range(2):
        r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=120, seed=seed, n=2,
                                           response_format=schema_format(PERSON))
        for choice in r.choices:
            assert choice.finish_reason == "stop"
            assert_person(choice.message.content)
    chunks = list(client.chat.completions.create(model="tiny", messages=HI, max_tokens=120, stream=True,
                                                 response_format=schema_format(PERSON)))
    assert_person("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    text = client.completions.create(model="tiny", prompt="A person:", max_tokens=120,
                                     extra_body={"response_format": schema_format(PERSON)})
    assert_person(text.choices[0].text)


def test_json_object_replies_are_json_objects(client):  # noqa: F811
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=40, n=4, seed=1,
                                       response_format={"type": "json_object"})
    for choice in r.choices:
        assert choice.message.content.startswith("{")
        if choice.finish_reason == "stop":
            assert isinstance(json.loads(choice.message.content), dict)


@pytest.mark.parametrize("response_format", [
    schema_format({"type": "nonsense"}),                              # not JSON Schema
    schema_format({"properties": 5}),
    schema_format({"type": "string", "pattern": "(?=a)b"}),          # valid, but beyond the library
    {"type": "json_schema", "json_schema": {"name": "x"}},            # no schema
    {"type": "yaml"},
])
def test_unusable_schemas_are_400_naming_response_format(client, response_format):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=2, response_format=response_format)
    assert info.value.param == "response_format"
    assert client.chat.completions.create(model="tiny", messages=HI, max_tokens=1).choices


def test_the_served_subprocess_is_safe_by_default(served):  # noqa: F811
    from test_server_safety import BODY, post_head, raw

    port = int(served.rsplit(":", 1)[1].split("/")[0])
    assert raw(port, post_head("attacker.example", "text/plain", "http://attacker.example"), BODY)[0] == 421
    assert raw(port, post_head("127.0.0.1", origin="http://attacker.example"), BODY)[0] == 403
    assert raw(port, post_head("127.0.0.1", "text/plain"), BODY)[0] == 415
    assert raw(port, post_head(f"localhost:{port}"), BODY)[0] == 200


def test_xtc_and_dry_sent_as_extra_fields_reach_the_sampler(client):  # noqa: F811
    """XTC at probability 1 and threshold 0 over top-2 leaves the second most likely token: the
    first token of each of 4 candidates (a batch) is the greedy reply's runner-up, where plain
    sampling would draw the top token about half the time. (DRY is accepted, its range checked.)"""
    greedy = client.chat.completions.create(model="tiny", messages=HI, max_tokens=1, logprobs=True, top_logprobs=2,
                                            **GREEDY)
    runner_up = greedy.choices[0].logprobs.content[0].top_logprobs[1].token
    xtc = client.chat.completions.create(
        model="tiny", messages=HI, max_tokens=1, n=4, temperature=1.0, top_p=1.0, logprobs=True, top_logprobs=2,
        extra_body={"repeat_penalty": 1.0, "top_k": 2, "min_p": 0, "xtc_probability": 1.0, "xtc_threshold": 0.0,
                    "dry_multiplier": 0.8, "dry_sequence_breakers": ["\n"]})
    assert [c.logprobs.content[0].token for c in xtc.choices] == [runner_up] * 4
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=1, extra_body={"dry_base": 0.5})
    assert "dry_base" in str(e.value)

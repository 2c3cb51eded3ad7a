"""The remote backend against fake OpenAI-compatible servers (Starlette on 127.0.0.1), each
scripted to misbehave in one way: refused keys, error statuses, malformed or cut-off streams,
silence. Real sockets, no mocks of httpx."""
from __future__ import annotations

import math
import socket
import threading
import time

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError, PasswordSetError
from starlette.responses import JSONResponse

from chatgui.common.runner import CancelFlag
from chatgui.common.prompt import PromptMessage
from chatgui.engine import PromptTooLongError, SamplingSettings
from chatgui.remote import (RemoteAuthError, RemoteConnectionError, RemoteError, RemoteModel, RemoteNotFoundError,
                            RemotePromptTooLongError, RemoteProtocolError, RemoteRateLimitError, RemoteServerError,
                            RemoteTimeoutError, normalize_base_url, public_backend_settings)
from chatgui.remote import ApiKeys
from chatgui.remote import secrets as remote_secrets
from fake_openai import FakeServer, sse_chunk

KEY = "sk-test-5ecret-value-123"
HI = [PromptMessage.user("hi")]


def chunk(content=None, finish=None, usage=None) -> str:
    return sse_chunk(content, finish, usage)


@pytest.fixture(scope="module")
def fake():
    server = FakeServer()
    yield server
    server.http.stop()


@pytest.fixture
def server(fake):
    return fake.reset()


def model_for(server, **kw) -> RemoteModel:
    kw.setdefault("model", "m")
    return RemoteModel(server.url, **kw)


# -- the happy path -----------------------------------------------------------------------
def test_stream_yields_token_events_and_usage_stats(server):
    server.handler = lambda req: server.stream(
        ": keep-alive comment\n\n", chunk(""), chunk("Hel"), chunk("lo"), chunk(finish="length"),
        chunk(usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}), "data: [DONE]\n\n", delay=0.01)
    gen = model_for(server).generate(HI, SamplingSettings(max_new_tokens=2))
    events = list(gen)
    assert [e.text for e in events] == ["Hel", "lo"]
    assert [e.index for e in events] == [0, 1]
    assert all(e.token_id == -1 and math.isnan(e.prob) and e.alternatives == () for e in events)
    assert gen.text == "Hello"
    st = gen.stats
    assert (st.prompt_tokens, st.generated_tokens, st.finish_reason) == (7, 2, "length")
    assert st.extra["usage_reported"] and st.time_to_first_token > 0 and st.tokens_per_second > 0
    assert gen.error is None


def test_a_reply_whose_text_came_in_one_chunk_still_has_a_speed(server):
    """A server may hold text back (a stop string that might be starting, an incomplete
    character) and send several tokens' text at once; with the token count in its usage, the
    speed runs from the first text to the end of the reply, not to the last text chunk (our own
    server's reply of 4 tokens once showed no tok/s)."""
    server.handler = lambda req: server.stream(
        chunk("Four tokens here"), chunk(finish="length"),
        chunk(usage={"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}), "data: [DONE]\n\n", delay=0.01)
    gen = model_for(server).generate(HI, SamplingSettings(max_new_tokens=4))
    assert [e.text for e in gen] == ["Four tokens here"]
    assert gen.stats.generated_tokens == 4 and gen.stats.tokens_per_second > 0


def test_sampling_settings_and_key_are_sent(server):
    server.handler = lambda req: server.stream(chunk("a", finish="stop"), "data: [DONE]\n\n")
    settings = SamplingSettings(temperature=0.3, top_p=0.8, top_k=20, min_p=0.1, repeat_penalty=1.2,
                                max_new_tokens=33, seed=5, stop=("END",))
    list(model_for(server, api_key=KEY).generate(HI, settings))
    req = server.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    body = req["json"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "m" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.8, 33)
    assert (body["seed"], body["stop"]) == (5, ["END"])
    assert (body["top_k"], body["min_p"], body["repeat_penalty"], body["repetition_penalty"]) == (20, 0.1, 1.2, 1.2)
    assert not any(name.startswith(("dry_", "xtc_")) for name in body)      # off: not sent


def test_dry_and_xtc_are_sent_while_on(server):
    server.handler = lambda req: server.stream(chunk("a", finish="stop"), "data: [DONE]\n\n")
    settings = SamplingSettings(dry_multiplier=0.8, dry_sequence_breakers=("\n", "##"), xtc_probability=0.5)
    list(model_for(server).generate(HI, settings))
    body = server.requests[-1]["json"]
    assert (body["dry_multiplier"], body["dry_base"], body["dry_allowed_length"]) == (0.8, 1.75, 2)
    assert body["dry_sequence_breakers"] == ["\n", "##"]
    assert (body["xtc_probability"], body["xtc_threshold"]) == (0.5, 0.1)


def test_a_strict_server_that_refuses_extra_fields_gets_a_plain_request(server):
    def handler(req):
        if "top_k" in req["json"]:
            return JSONResponse({"error": {"message": "Unrecognized request argument supplied: top_k"}}, 400)
        return server.stream(chunk("ok", finish="stop"), "data: [DONE]\n\n")
    server.handler = handler
    model = model_for(server)
    assert "".join(e.text for e in model.generate(HI, SamplingSettings(top_k=40))) == "ok"
    assert [r["json"].get("top_k") for r in server.requests] == [40, None]
    assert model.send_extra_sampling is False


def test_a_whole_json_reply_is_accepted_when_the_server_does_not_stream(server):
    reply = {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 2}
    server.handler = lambda req: JSONResponse({"choices": [reply], "usage": usage})
    gen = model_for(server).generate(HI)
    assert "".join(e.text for e in gen) == "Hi!"
    assert (gen.stats.finish_reason, gen.stats.prompt_tokens, gen.stats.generated_tokens) == ("stop", 3, 2)


def test_list_models_and_first_model_is_picked_when_none_chosen(server):
    def handler(req):
        if req["path"].endswith("/models"):
            return JSONResponse({"object": "list", "data": [{"id": "alpha"}, {"id": "beta"}]})
        return server.stream(chunk("x", finish="stop"), "data: [DONE]\n\n")
    server.handler = handler
    model = RemoteModel(server.url)
    assert model.list_models() == ["alpha", "beta"]
    list(model.generate(HI))
    assert model.name == "alpha" and server.requests[-1]["json"]["model"] == "alpha"


def test_a_model_list_in_another_format_is_a_protocol_error(server):
    server.handler = lambda req: JSONResponse({"models": ["a"]})
    with pytest.raises(RemoteProtocolError, match="not in the OpenAI format"):
        model_for(server).list_models()


# -- refusals -----------------------------------------------------------------------------
def test_a_refused_key_is_a_clear_auth_error_that_never_shows_the_key(server):
    server.handler = lambda req: JSONResponse({"error": {"message": f"Incorrect API key provided: {KEY}"}}, 401)
    model = model_for(server, api_key=KEY)
    with pytest.raises(RemoteAuthError) as info:
        model.generate(HI)
    e = info.value
    assert "refused the API key (401)" in str(e) and e.status == 401
    for text in (str(e), repr(e), repr(e.args), e.server_message, repr(model), str(vars(model))):
        assert KEY not in text
    with pytest.raises(RemoteAuthError) as info:
        model.list_models()
    assert KEY not in str(info.value)


def test_a_missing_key_is_asked_for(server):
    server.handler = lambda req: JSONResponse({"error": {"message": "no key"}}, 401)
    with pytest.raises(RemoteAuthError, match="requires an API key"):
        model_for(server).generate(HI)


@pytest.mark.parametrize("status, cls, words", [
    (404, RemoteNotFoundError, "no such model"),
    (429, RemoteRateLimitError, "rate-limiting"),
    (500, RemoteServerError, r"failed \(500\)"),
    (503, RemoteServerError, "busy"),
])
def test_error_statuses_become_remote_errors(server, status, cls, words):
    server.handler = lambda req: JSONResponse({"error": {"message": "the server's reason"}}, status)
    with pytest.raises(cls, match=words) as info:
        model_for(server).generate(HI)
    assert "the server's reason" in str(info.value) and info.value.status == status


def test_a_chat_too_long_for_the_server_is_a_prompt_too_long_error(server):
    error = {"message": "This model's maximum context length is 4096 tokens", "code": "context_length_exceeded"}
    server.handler = lambda req: JSONResponse({"error": error}, 400)
    with pytest.raises(RemotePromptTooLongError) as info:
        model_for(server).generate(HI)
    assert isinstance(info.value, PromptTooLongError)   # the UI's existing handler catches it


def test_an_unreachable_server_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]        # bound, never listening: connections are refused
        t = time.monotonic()
        with pytest.raises(RemoteConnectionError, match="Cannot reach the server"):
            RemoteModel(f"http://127.0.0.1:{port}", model="m").generate(HI)
        with pytest.raises(RemoteConnectionError):
            RemoteModel(f"http://127.0.0.1:{port}").list_models()
    assert time.monotonic() - t < 5


# -- broken streams keep what arrived -----------------------------------------------------
def test_malformed_sse_is_a_protocol_error_and_keeps_the_partial_text(server):
    server.handler = lambda req: server.stream(chunk("Part"), "data: {not json\n\n")
    gen = model_for(server).generate(HI)
    with pytest.raises(RemoteProtocolError, match="malformed stream") as info:
        for _ in gen:
            pass
    assert gen.text == "Part" and info.value.partial_text == "Part"
    assert gen.error is info.value and gen.stats.finish_reason == "error"


def test_a_stream_cut_short_is_a_protocol_error(server):
    server.handler = lambda req: server.stream(chunk("Half a rep"))
    gen = model_for(server).generate(HI)
    with pytest.raises(RemoteProtocolError, match="before the reply was finished"):
        list(gen)
    assert gen.text == "Half a rep"


def test_an_html_page_instead_of_a_stream_is_a_protocol_error(server):
    server.handler = lambda req: server.stream("<html>\n<body>Welcome to nginx</body>\n</html>\n")
    with pytest.raises(RemoteProtocolError):
        list(model_for(server).generate(HI))


def test_an_error_event_mid_stream_is_a_server_error(server):
    server.handler = lambda req: server.stream(chunk("So far"), 'data: {"error": {"message": "out of memory"}}\n\n')
    gen = model_for(server).generate(HI)
    with pytest.raises(RemoteServerError, match="out of memory"):
        list(gen)
    assert gen.text == "So far"


# -- silence and cancelling ---------------------------------------------------------------
def test_a_silent_server_times_out(server):
    server.handler = lambda req: server.stream(chunk("a"), then_wait=30)
    gen = model_for(server, read_timeout=0.5).generate(HI)
    t = time.monotonic()
    with pytest.raises(RemoteTimeoutError, match="did not answer in time"):
        list(gen)
    assert time.monotonic() - t < 3 and gen.text == "a"


def test_cancel_ends_the_stream_at_once_and_hangs_up_even_while_the_server_is_silent(server):
    server.handler = lambda req: server.stream(chunk("one"), chunk("two"), then_wait=30)
    cancel = CancelFlag()
    gen = model_for(server).generate(HI, cancel=cancel)
    it = iter(gen)
    assert next(it).text == "one" and next(it).text == "two"
    threading.Timer(0.2, cancel.set).start()
    t = time.monotonic()
    assert list(it) == []
    assert time.monotonic() - t < 0.2 + 1.0   # against 30 s of silence
    assert gen.stats.finish_reason == "cancelled" and gen.text == "onetwo"
    assert server.hung_up.wait(3), "the server never saw the client go away"


def test_cancel_before_the_server_answers_returns_an_empty_generation(server):
    cancel = CancelFlag()
    cancel.set()
    server.handler = lambda req: server.stream(chunk("x", finish="stop"), "data: [DONE]\n\n")
    gen = model_for(server).generate(HI, cancel=cancel)
    assert list(gen) == [] and gen.stats.finish_reason == "cancelled"


# -- addresses and secrets ----------------------------------------------------------------
@pytest.mark.parametrize("typed, base", [
    ("localhost:8000", "http://localhost:8000/v1"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1"),
    ("https://api.example.com/openai/v1", "https://api.example.com/openai/v1"),
])
def test_base_urls_are_normalized(typed, base):
    assert normalize_base_url(typed) == base


def test_a_bad_address_is_a_remote_error():
    with pytest.raises(RemoteError):
        RemoteModel("ftp://example.com")
    with pytest.raises(RemoteError):
        RemoteModel("")


def test_passwords_in_the_url_stay_out_of_messages_and_paths():
    model = RemoteModel("http://user:hunter2@127.0.0.1:9/v1", model="m")
    assert "hunter2" not in repr(model) and "hunter2" not in model.path
    with pytest.raises(RemoteConnectionError) as info:
        model.generate(HI)
    assert "hunter2" not in str(info.value)


def test_public_backend_settings_strip_every_secret():
    backend = {"kind": "openai", "base_url": "https://u:pw@host/v1", "model": "m", "api_key": KEY,
               "extra": {"Authorization": "Bearer x", "access_token": "t", "timeout": 5}}
    public = public_backend_settings(backend)
    assert public == {"kind": "openai", "base_url": "https://host/v1", "model": "m", "extra": {"timeout": 5}}
    assert backend["api_key"] == KEY     # the original is left alone


class MemoryKeyring(KeyringBackend):
    """A working OS keyring, in memory (keyring ships none): what the app sees on a desktop."""
    priority = 1

    def __init__(self):
        super().__init__()
        self.stored = {}

    def set_password(self, service, username, password):
        self.stored[(service, username)] = password

    def get_password(self, service, username):
        return self.stored.get((service, username))

    def delete_password(self, service, username):
        if (service, username) not in self.stored:
            raise PasswordDeleteError("not stored")
        del self.stored[(service, username)]


def test_api_keys_go_to_the_keyring_when_there_is_one(monkeypatch):
    backend = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    assert remote_secrets.system_keyring() is backend
    keys = ApiKeys(remote_secrets.system_keyring())
    assert keys.persistent and keys.save("http://h/v1", KEY)
    assert backend.stored == {("chatgui", "http://h/v1"): KEY}
    assert ApiKeys(backend).load("http://h/v1") == KEY      # a later session finds it
    keys.save("http://h/v1", "")                              # an empty key forgets it
    assert backend.stored == {} and ApiKeys(backend).load("http://h/v1") == ""


@pytest.mark.parametrize("none_there", [keyring.backends.fail.Keyring, keyring.backends.null.Keyring])
def test_without_a_keyring_service_a_key_lasts_the_session(monkeypatch, none_there):
    monkeypatch.setattr(keyring.core, "_keyring_backend", none_there())
    assert remote_secrets.system_keyring() is None
    keys = ApiKeys(remote_secrets.system_keyring())
    assert not keys.persistent
    assert keys.save("http://h/v1", KEY) is False             # said: not remembered
    assert keys.load("http://h/v1") == KEY                    # but this session has it
    assert ApiKeys(remote_secrets.system_keyring()).load("http://h/v1") == ""   # the next does not


def test_a_refusing_keyring_keeps_the_key_for_the_session():
    class Locked(MemoryKeyring):
        def set_password(self, service, username, password):
            raise PasswordSetError("locked")

    keys = ApiKeys(Locked())
    assert keys.save("http://h/v1", KEY) is False and keys.load("http://h/v1") == KEY


def test_a_plain_event_is_refused_as_cancel_flag(server):
    """The reader blocks on its queue and is woken by the CancelFlag: a plain Event could not wake it."""
    with pytest.raises(TypeError, match="CancelFlag"):
        model_for(server).generate(HI, cancel=threading.Event())


def test_the_reader_waits_without_polling(server):
    """Cancelling wakes the reader through the flag's callback, even while the server is silent;
    once the reply is over the flag keeps no callback of it."""
    server.handler = lambda req: server.stream(chunk("one"), then_wait=30)
    cancel = CancelFlag()
    gen = model_for(server).generate(HI, cancel=cancel)
    it = iter(gen)
    assert next(it).text == "one"
    assert len(cancel._callbacks) == 1
    threading.Timer(0.1, cancel.set).start()
    t = time.monotonic()
    assert list(it) == [] and time.monotonic() - t < 1.0
    assert cancel._callbacks == []
    done = CancelFlag()
    server.handler = lambda req: server.stream(chunk("x", finish="stop"), "data: [DONE]\n\n")
    assert [e.text for e in model_for(server).generate(HI, cancel=done)] == ["x"]
    assert done._callbacks == []

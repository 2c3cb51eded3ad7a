"""The server as users run it (`python -m chatgui.server`, a subprocess) spoken to by a client
nobody here wrote, the official `openai` package, and by our own remote backend."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest

from chatgui.common.prompt import PromptMessage
from chatgui.common.runner import CancelFlag
from chatgui.engine import PromptTooLongError, SamplingSettings, load_model
from chatgui.remote import RemoteModel
from chatgui.server import start_server

ROOT = Path(__file__).resolve().parents[1]
HI = [{"role": "user", "content": "Hello there"}]
TYPED_HI = [PromptMessage.user("Hello there")]   # as our remote backend is given it


def read_url(proc: subprocess.Popen, timeout: float) -> str:
    """The first stdout line (the base URL), without hanging if the server never prints it."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        line = ""
    if not re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\n", line):
        proc.kill()
        pytest.fail(f"the server did not print its URL: {line!r}\n{proc.stderr.read()}")
    return line.strip()


@pytest.fixture(scope="module")
def served(tiny_model_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chatgui.server", "--model", str(tiny_model_path),
                             "--port", "0", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    try:
        yield read_url(proc, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served, api_key="not-needed", max_retries=0, timeout=30)


def test_openai_lists_the_model(client):
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_openai_completion(client):
    r = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=0)
    assert r.object == "chat.completion" and r.model == "tiny"
    assert r.choices[0].message.role == "assistant" and isinstance(r.choices[0].message.content, str)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 8


def test_openai_streaming_with_usage(client):
    stream = client.chat.completions.create(model="tiny", messages=HI, max_tokens=8, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text and finish in (["stop"], ["length"])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 8


def test_openai_sees_errors_as_its_own_exceptions(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-9", messages=HI)
    with pytest.raises(openai.BadRequestError, match="too long") as info:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 400}])
    assert info.value.code == "context_length_exceeded"


def test_our_remote_backend_talks_to_our_server(served):
    model = RemoteModel(served)
    assert model.list_models() == ["tiny"]
    gen = model.generate(TYPED_HI, SamplingSettings(temperature=0, max_new_tokens=6))
    events = list(gen)
    assert events and gen.text == "".join(e.text for e in events)
    st = gen.stats
    assert st.extra["usage_reported"] and st.prompt_tokens > 0 and 0 < st.generated_tokens <= 6
    assert st.finish_reason in ("stop", "length")


def test_our_remote_backend_gets_a_prompt_too_long_error(served):
    with pytest.raises(PromptTooLongError, match="too long"):
        RemoteModel(served).generate([PromptMessage.user("word " * 400)])


def test_cancel_through_our_remote_backend_stops_quickly(served):
    cancel = CancelFlag()
    gen = RemoteModel(served).generate(TYPED_HI, SamplingSettings(max_new_tokens=200), cancel=cancel)
    next(iter(gen))
    cancel.set()
    t = time.monotonic()
    rest = list(gen)
    assert time.monotonic() - t < 1.0 and gen.stats.finish_reason == "cancelled" and len(rest) < 20


@pytest.mark.real_model
def test_the_real_model_knows_the_capital_of_france(real_model_path):
    with start_server(lambda: load_model(real_model_path, device="cpu")) as handle:
        client = openai.OpenAI(base_url=handle.url, api_key="not-needed", max_retries=0, timeout=120)
        r = client.chat.completions.create(model=handle.model_name, temperature=0, max_tokens=48,
                                           messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in r.choices[0].message.content

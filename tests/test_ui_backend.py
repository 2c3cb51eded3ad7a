"""The window with the remote backend and the "serve this model" toggle: real servers on
127.0.0.1 (our own start_server on the tiny model, and scripted Starlette fakes), no mocks of
the network."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from starlette.responses import JSONResponse

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.remote import secrets as remote_secrets
from chatgui.server import start_server
from chatgui.store import AppSettings
from chatgui.ui.options import LaunchOptions
from fake_openai import FakeServer, sse_chunk

KEY = "sk-ui-test-5ecret-4f9a2c"
REPLY_TIMEOUT_MS = 30_000
ROOT = Path(__file__).resolve().parents[1]


# -- servers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tiny_model_path):
    """chatgui's own server on the tiny model, wanting an API key."""
    from chatgui.engine import load_model
    with start_server(lambda: load_model(tiny_model_path, device="cpu"), api_key=KEY) as handle:
        yield handle


def chunk(content=None, finish=None, usage=None) -> str:
    return sse_chunk(content, finish, usage, model="fake")


@pytest.fixture(scope="module")
def fake_server():
    server = FakeServer(own_models=True)
    yield server
    server.http.stop()


@pytest.fixture
def fake(fake_server):
    return fake_server.reset()


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch):
    """Whatever this machine has: no OS keyring, so a key is kept for the session only."""
    monkeypatch.setattr(remote_secrets, "system_keyring", lambda: None)


# -- helpers --------------------------------------------------------------------------------
def choose_kind(window, kind: str) -> None:
    group = window.backend.group
    index = group.kind.findData(kind)
    group.kind.setCurrentIndex(index)
    group.kind.activated.emit(index)


def refresh(qtbot, window, url: str, key: str = "") -> None:
    group = window.backend.group
    choose_kind(window, "openai")
    group.base_url.setText(url)
    group.api_key.setText(key)
    qtbot.mouseClick(group.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(group.refresh_button.isEnabled, timeout=10_000)


def connect(qtbot, window, url: str, key: str = "") -> None:
    refresh(qtbot, window, url, key)
    qtbot.mouseClick(window.backend.group.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None and window.model_controller.loaded.device == "remote", timeout=30_000)


def send(qtbot, window, text: str, max_new_tokens: int = 16, wait: bool = True):
    window.panel.max_new_tokens.setValue(max_new_tokens)
    window.input_bar.input.setPlainText(text)
    qtbot.mouseClick(window.input_bar.send_button, Qt.MouseButton.LeftButton)
    if wait:
        qtbot.waitUntil(lambda: not window.replies.busy, timeout=REPLY_TIMEOUT_MS)
    return window.current.active_path()[-1]


def notice_text(window, key: str) -> str:
    notice = window.notices.get(key)
    return notice.label.text() if notice is not None else ""


def assert_closed(url: str, wait_s: float = 8.0) -> None:
    """The server at url stops answering within wait_s."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            httpx.get(url + "/models", timeout=1)
        except httpx.ConnectError:
            return
        assert time.monotonic() < deadline, "the server is still answering"
        time.sleep(0.05)


def files_under(folder: Path) -> dict[Path, str]:
    return {p: p.read_text("utf-8", "replace") for p in folder.rglob("*") if p.is_file()}


# -- the remote backend -----------------------------------------------------------------------
def test_chat_through_our_own_server_keeps_the_key_out_of_chats(qtbot, make_window, served, tmp_path):
    window = make_window()
    group = window.backend.group
    assert not group.remote_box.isVisible()
    refresh(qtbot, window, served.url)           # no key: the server says so, in words
    assert "401" in group.state.text() and "API key" in group.state.text()
    assert "Error" not in group.state.text()     # no exception class names
    refresh(qtbot, window, served.url, KEY)
    assert group.remote_box.isVisible()
    assert [group.remote_model.itemText(i) for i in range(group.remote_model.count())] == ["tiny"]

    qtbot.mouseClick(group.connect_button, Qt.MouseButton.LeftButton)
    # (model_loaded and connected are two queued signals from the engine thread: wait for both)
    qtbot.waitUntil(lambda: window.model_controller.loaded.device == "remote" and "Connected" in group.state.text(),
                    timeout=10_000)
    assert window.status.device_label.text() == "Remote" and window.status.model_label.text() == "tiny"

    reply = send(qtbot, window, "Hello remote", max_new_tokens=12)
    assert reply.role == "assistant" and reply.content
    assert window.view.widget_for(reply.id).text() == reply.content
    meta = reply.meta
    assert meta.device == "remote" and meta.model == "tiny" and meta.finish_reason in ("length", "stop")
    assert meta.backend == {"kind": "openai", "base_url": served.url, "model": "tiny"}
    assert not meta.token_data and not meta.model_path and meta.model_sha256 is None
    assert meta.usage_reported and meta.prompt_tokens > 0 and 0 < meta.tokens <= 12
    assert "≈" in window.status.context_label.text() and "First token" in window.status.speed_label.text()
    # a speed where there is one to say: a reply of a single token has none (never "0.0 tok/s")
    assert "tok/s" in window.status.speed_label.text() or meta.tokens <= 1
    assert "tokens" in window.view.widget_for(reply.id).info_label.text()

    # No keyring here: the key is kept for this session (the panel says so in one line), and is
    # nowhere in the settings, chats or exports.
    backend = window.settings.backend
    assert backend["kind"] == "openai" and backend["model"] == "tiny" and "api_key" not in backend
    assert window.backend.keys.load(served.url) == KEY and not window.backend.keys.persistent
    assert "until chatgui closes" in group.key_note.text() and group.key_note.isVisible()
    assert window.save_chat(window.current)
    data = files_under(Path(os.environ["CHATGUI_DATA_DIR"]))
    assert window.store.exists(window.current.id) and any(p.name.startswith("history.sqlite3") for p in data)
    assert not [p for p, text in data.items() if KEY in text]
    assert KEY not in json.dumps(meta.to_dict()) and KEY not in window.store.export_json(window.current)
    exported = tmp_path / "export.json"
    assert window.export_chat(str(exported), "json") and window.history_actions.jobs.wait(30)
    assert KEY not in exported.read_text()
    settings_file = Path(os.environ["CHATGUI_CONFIG_DIR"]) / "settings.json"
    # saved on connect, within the SaveManager's coalescing delay
    qtbot.waitUntil(lambda: settings_file.exists() and
                    json.loads(settings_file.read_text()).get("backend", {}).get("kind") == "openai", timeout=10_000)
    assert KEY not in settings_file.read_text()

    # Back to the local model: the one kept in memory, at once; its replies have token data again.
    choose_kind(window, "local")
    qtbot.waitUntil(lambda: window.model_controller.loaded.device == "cpu", timeout=10_000)
    assert not group.remote_box.isVisible() and window.settings.backend["kind"] == "local"
    local = send(qtbot, window, "And locally?", max_new_tokens=4)
    assert local.meta.device == "cpu" and local.meta.token_data


def test_the_saved_server_is_used_at_startup(qtbot, make_window, served):
    settings = AppSettings(backend={"kind": "openai", "base_url": served.url, "model": "tiny", "api_key": KEY})
    window = make_window(options=LaunchOptions(fetch="never"), settings=settings)
    assert window.model_controller.loaded.device == "remote" and window.model_controller.loaded.name == "tiny"
    assert window.backend.group.api_key.text() == KEY and window.backend.group.kind_choice() == "openai"
    assert send(qtbot, window, "Hi", max_new_tokens=4).content


def test_stop_during_a_remote_reply_keeps_the_text_and_hangs_up(qtbot, make_window, fake):
    # The model list is the fake's own (None): answered with this 6-second stream, the two model
    # list requests of connect() took most of its 10 s wait, and on a busy machine all of it.
    fake.handler = lambda req: None if req["path"] == "/v1/models" else fake.stream(
        *[chunk(f"word{i} ") for i in range(300)], chunk(finish="stop"), "data: [DONE]\n\n", delay=0.02)
    window = make_window()
    connect(qtbot, window, fake.url)
    reply = send(qtbot, window, "Tell me a long story", max_new_tokens=300, wait=False)
    qtbot.waitUntil(lambda: len(reply.content) > 20, timeout=10_000)
    started = time.perf_counter()
    qtbot.mouseClick(window.input_bar.stop_button, Qt.MouseButton.LeftButton)
    assert not window.replies.busy
    partial = reply.content
    assert partial.startswith("word0 word1 ") and window.view.widget_for(reply.id).text() == partial
    assert fake.hung_up.wait(3) and time.perf_counter() - started < 3   # the HTTP stream was closed
    qtbot.waitUntil(lambda: not window.replies._stopped, timeout=3000)
    assert reply.content == partial and reply.meta.finish_reason == "cancelled"
    assert reply.meta.tokens > 0 and not reply.meta.token_data
    assert "≈" in window.view.widget_for(reply.id).info_label.text()
    assert "stopped" in window.view.widget_for(reply.id).info_label.text()


def test_server_errors_are_shown_in_words_and_lose_nothing(qtbot, make_window, fake):
    window = make_window()
    group = window.backend.group
    # A server that wants a key: a clear message, and the local model stays in use.
    fake.models_status = 401
    refresh(qtbot, window, fake.url)
    assert "401" in group.state.text() and "API key" in group.state.text()
    qtbot.mouseClick(group.connect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.notices.get("backend-error") is not None, timeout=10_000)
    message = notice_text(window, "backend-error")
    assert "401" in message and "still in use" in message and "RemoteAuthError" not in message
    assert window.model_controller.loaded.device == "cpu"
    assert send(qtbot, window, "Still working?", max_new_tokens=3).meta.device == "cpu"
    # Nothing listens there: says so.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    refresh(qtbot, window, f"http://127.0.0.1:{dead_port}/v1")
    assert "Cannot reach" in group.state.text()

    fake.models_status = 200
    connect(qtbot, window, fake.url)
    # A stream that breaks off with garbage: the text so far is kept, the message is plain.
    fake.handler = lambda req: fake.stream(chunk("Part one, "), chunk("part two"), "data: {not json\n\n")
    reply = send(qtbot, window, "Break please")
    assert reply.content == "Part one, part two" and reply.meta.finish_reason == "error"
    error = notice_text(window, "reply-error")
    assert "malformed stream" in error and "Remote" not in error and "The reply failed" not in error
    # Refusals before the first word (500, 429): the question stays, the empty reply goes.
    for status, words in ((500, "500"), (429, "429")):
        fake.handler = lambda req, status=status: JSONResponse({"error": {"message": "overloaded"}}, status)
        user = send(qtbot, window, f"Status {status}?")
        assert user.role == "user" and user.content == f"Status {status}?"
        assert words in notice_text(window, "reply-error")
    # And it still works.
    fake.handler = lambda req: fake.stream(chunk("All "), chunk("good.", finish="stop"), "data: [DONE]\n\n")
    assert send(qtbot, window, "Again").content == "All good."
    assert window.notices.get("reply-error") is None


# -- serving the local model ------------------------------------------------------------------
def test_the_serve_toggle_serves_the_model_to_openai_clients(qtbot, make_window, tiny_model_path, tmp_path):
    from openai import OpenAI

    window = make_window()
    serve = window.backend.serve_group
    # A port in use: said at once, and the toggle goes back off.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        serve.port.setValue(taken.getsockname()[1])
        qtbot.mouseClick(serve.check, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "already in use" in serve.state.text(), timeout=30_000)
        assert not serve.check.isChecked() and serve.port.isEnabled()

    serve.port.setValue(0)   # any free port
    qtbot.mouseClick(serve.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: serve.url.text().startswith("http://127.0.0.1:"), timeout=20_000)
    url = serve.url.text()
    assert serve.check.isChecked() and url.endswith("/v1") and serve.copy_button.isEnabled()
    assert window.backend.serve.status_label.isVisible() and url in window.backend.serve.status_label.text()
    client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=20)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    answer = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=3)
    assert answer.choices[0].finish_reason in ("length", "stop")
    # Both ways at once: the app chats with its own served model, then goes back to the local one.
    connect(qtbot, window, url)
    assert serve.check.isChecked() and send(qtbot, window, "Hello me", max_new_tokens=4).meta.device == "remote"
    choose_kind(window, "local")
    qtbot.waitUntil(lambda: window.model_controller.loaded.device == "cpu", timeout=30_000)
    assert serve.check.isChecked()

    qtbot.mouseClick(serve.check, Qt.MouseButton.LeftButton)   # off
    assert not serve.url.text() and not window.backend.serve.status_label.isVisible()
    assert_closed(url)

    # On again, then the app's model changes: the server stops and says why.
    qtbot.mouseClick(serve.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: serve.url.text() != "", timeout=20_000)
    other = tmp_path / "other.gguf"
    other.write_bytes(Path(tiny_model_path).read_bytes())
    window.model_controller.load(str(other))
    # The model controller and the serve controller each get the worker's "loaded" signal as
    # their own queued event: wait until both have run, not just the first.
    qtbot.waitUntil(lambda: window.model_controller.loaded.path == str(other) and not serve.check.isChecked(),
                    timeout=20_000)
    assert not serve.check.isChecked() and "model changed" in serve.state.text()
    assert_closed(url)

    # On again, and the window closes: the server stops with it.
    qtbot.mouseClick(serve.check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: serve.url.text() != "", timeout=20_000)
    url = serve.url.text()
    assert httpx.get(url + "/models", timeout=5).json()["data"][0]["id"] == "other"
    window.close()
    assert_closed(url, wait_s=0.5)


def test_chatgui_serve_subcommand_prints_the_url(tiny_model_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHATGUI_DATA_DIR": str(tmp_path / "d"),
           "CHATGUI_CONFIG_DIR": str(tmp_path / "c")}
    proc = subprocess.Popen([sys.executable, "-m", "chatgui", "serve", "--port", "0", "--model",
                             str(tiny_model_path), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), proc.stderr.read() if not url else url
        assert httpx.get(url + "/models", timeout=10).json()["data"][0]["id"] == "tiny"
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0


def test_connecting_to_a_server_frees_the_local_model(qtbot, make_window, fake):
    import gc
    import weakref
    window = make_window()
    local = weakref.ref(window.engine.runner.backend)
    connect(qtbot, window, fake.url)
    gc.collect()
    assert local() is None                                   # its memory is the user's again
    choose_kind(window, "local")                             # back: the file is loaded again
    qtbot.waitUntil(lambda: window.model_controller.loaded.device == "cpu", timeout=30_000)


def test_the_local_server_restarts_on_the_same_port_at_once(qtbot, tiny_model_path):
    """Start and stop are jobs of the LocalServer's own runner, in order: turning it off and on
    again on a fixed port works at once (the stop has freed the port before the start binds it),
    and closing stops it."""
    from chatgui.ui.serve.toggle import LocalServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = LocalServer()
    states = []
    server.state_changed.connect(lambda state, text, url: states.append((state, text)))
    try:
        server.start(tiny_model_path, port)
        qtbot.waitUntil(lambda: server.running, timeout=20_000)
        server.stop()
        server.start(tiny_model_path, port)
        qtbot.waitUntil(lambda: server.running, timeout=20_000)
        assert [s for s, _ in states] == ["starting", "on", "off", "starting", "on"], states
        url = server.handle.url
        assert httpx.get(url + "/models", timeout=5).status_code == 200
    finally:
        server.stop(wait=True, announce=False)
    assert_closed(url, wait_s=0.5)

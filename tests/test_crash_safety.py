"""kill -9 the real app mid-reply: every chat survives, the reply is at most 2 s behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chatgui.store import AppSettings, HistoryStore, save_settings
from chatgui.session import Chat
from tiny_gguf import write_tiny_model

DRIVER = Path(__file__).parent / "drivers" / "crash_app.py"
SAVE_INTERVAL = 2.0


def test_kill_mid_reply_loses_at_most_two_seconds(tmp_path):
    data, config = tmp_path / "data", tmp_path / "config"
    store = HistoryStore(data)
    old = []
    for i in range(3):
        chat = Chat(title=f"old chat {i}")
        u = chat.append("user", f"question {i}")
        chat.add_message(u.id, "assistant", f"answer {i}")
        store.save(chat)
        old.append(chat)
    # A slow-enough model and a long reply, so the kill surely lands mid-reply.
    model = write_tiny_model(tmp_path / "m.gguf", dim=256, n_layers=6, n_heads=8, n_kv_heads=4, hidden=768,
                             context=8192)
    settings = AppSettings()
    settings.sampling = {**settings.sampling, "max_new_tokens": 6000}
    settings.context_length = 8192
    config.mkdir(parents=True)
    save_settings(settings, config / "settings.json")
    env = {**os.environ, "CHATGUI_DATA_DIR": str(data), "CHATGUI_CONFIG_DIR": str(config),
           "CHATGUI_MODEL": str(model), "CHATGUI_NO_FETCH": "1", "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, str(DRIVER)], env=env, stdout=subprocess.PIPE, text=True)
    lengths: list[tuple[float, int]] = []
    sent = None
    deadline = time.time() + 120
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts[0] == "SENT":
                sent = float(parts[1])
            elif parts[0] == "LEN":
                lengths.append((float(parts[1]), int(parts[2])))
                if sent and lengths[-1][0] - sent > 4.5 and lengths[-1][1] > 0:
                    break
            assert time.time() < deadline, "the app never streamed a reply"
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert sent is not None and lengths, "the app did not start replying"

    # Restart: the database passes its checks (open runs quick_check), everything is there.
    store = HistoryStore(data)
    summaries = store.list_chats()
    assert store.take_problems() == []
    assert len(summaries) == 4, [s.title for s in summaries]
    ids = {s.id for s in summaries}
    for chat in old:
        assert chat.id in ids
        assert [m.content for m in store.load(chat.id).active_path()] == [m.content for m in chat.active_path()]
    new = store.load(next(i for i in ids if i not in {c.id for c in old}))
    path = new.active_path()
    assert path[0].role == "user" and path[0].content.startswith("Tell me a very long story")
    assert len(path) == 2 and path[1].role == "assistant"
    saved = len(path[1].content)
    # What had streamed 2 s (the save interval) before the kill is on disk.
    streamed_before = max((n for t, n in lengths if t <= killed_at - SAVE_INTERVAL - 0.3), default=0)
    assert saved >= streamed_before > 0, (saved, streamed_before)

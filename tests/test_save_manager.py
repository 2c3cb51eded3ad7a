"""The window's one SaveManager: writes coalesce on one timer and are flushed on close."""
from __future__ import annotations

import json
import os
from pathlib import Path

from chatgui.ui.settings.save_manager import DELAY_MS, SETTINGS, SaveManager


def test_a_burst_of_requests_is_one_write_per_key(qtbot):
    saves = SaveManager(delay_ms=50)
    written = []
    saves.register(SETTINGS, lambda: written.append("settings"))
    for _ in range(5):
        saves.schedule("a signal's argument")
        saves.request("chat:1", lambda: written.append("chat 1 old"))
        saves.request("chat:1", lambda: written.append("chat 1 new"))   # the newest writer wins
    assert saves.pending and written == []
    qtbot.waitUntil(lambda: not saves.pending, timeout=2000)
    assert written == ["settings", "chat 1 new"] and saves.saves == 1


def test_steady_requests_still_save_every_delay(qtbot):
    saves = SaveManager(delay_ms=100)
    written = []
    saves.register(SETTINGS, lambda: written.append(1))
    saves.schedule()
    # asked again and again before the timer fires: the first request's deadline holds
    qtbot.wait(60)
    saves.schedule()
    qtbot.waitUntil(lambda: written == [1], timeout=95)


def test_flush_writes_at_once_and_one_failure_loses_no_other(qtbot, caplog):
    saves = SaveManager(delay_ms=60_000)
    written = []

    def broken():
        raise RuntimeError("disk on fire")

    saves.request("a", broken)
    saves.request("b", lambda: written.append("b"))
    saves.flush()
    assert written == ["b"] and not saves.pending and "saving a failed" in caplog.text
    saves.flush()                        # nothing pending: nothing written, not counted
    assert saves.saves == 1
    saves.close()
    saves.request("c", lambda: written.append("c"))   # closed: taken no more
    assert not saves.pending and written == ["b"]


def test_the_window_saves_through_it_and_flushes_on_close(qtbot, make_window):
    window = make_window(wait_model=False)
    assert isinstance(window.autosave, SaveManager)
    qtbot.waitUntil(lambda: not window.autosave.pending, timeout=2000)
    before = window.autosave.saves
    window.panel.temperature.setValue(0.41)        # the settings,
    window.backend.settings_changed.emit()         # the backend's,
    window.theme_menu.choose("dark")               # a menu's,
    chat = window.current
    chat.append("user", "hello")
    window.panel.system_prompt.setPlainText("Be brief.")   # and an edited chat: all wait for the one timer
    assert window.autosave.pending and DELAY_MS <= 1000
    window.close()                                 # ... and are written now
    assert not window.autosave.pending and window.autosave.saves == before + 1
    saved = json.loads((Path(os.environ["CHATGUI_CONFIG_DIR"]) / "settings.json").read_text())
    assert saved["sampling"]["temperature"] == 0.41 and saved["theme"] == "dark"
    assert saved["last_chat_id"] == chat.id
    assert window.store.load(chat.id).system_prompt == "Be brief."

"""Putting the window back as it was: sampling settings, geometry, docks, splitter."""
from __future__ import annotations

import base64

from PySide6.QtCore import QByteArray

from chatgui.store import AppSettings, StoreError, save_settings

from chatgui.ui.common.i18n import translate


def _encode(data: QByteArray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _decode(text: str | None) -> QByteArray | None:
    try:
        return QByteArray(base64.b64decode(text or "", validate=True)) if text else None
    except ValueError:
        return None


def restore_window(window, settings: AppSettings) -> None:
    window.panel.set_sampling(settings.sampling_settings(), random_seed=settings.random_seed)
    for data, restore in ((settings.window_geometry, window.restoreGeometry),
                          (settings.window_state, window.restoreState),
                          (settings.splitter_state, window.main_split.restoreState)):
        raw = _decode(data)
        if raw is not None:
            restore(raw)   # Qt ignores data it cannot use


def store_window(window, settings: AppSettings) -> None:
    """Record the window (and the chat to reopen) in `settings` and save them: SaveManager's
    SETTINGS writer. A failure is only shown in the status bar."""
    window.record_last_chat()
    settings.set_sampling(window.panel.sampling())
    settings.random_seed = window.panel.uses_random_seed()
    settings.window_geometry = _encode(window.saveGeometry())
    settings.window_state = _encode(window.saveState())
    settings.splitter_state = _encode(window.main_split.saveState())
    try:
        save_settings(settings)
    except StoreError as e:
        window.status.showMessage(translate("MainWindow", "Settings not saved: {error}").format(error=e), 5000)

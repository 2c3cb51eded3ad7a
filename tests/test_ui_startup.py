"""Starting the app: no torch before the window shows, launch options, the first-run offer."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtWidgets import QWidget

from chatgui.ui.options import LaunchOptions, options_from_env, parse_args

ROOT = Path(__file__).resolve().parents[1]

SHOW_WINDOW = textwrap.dedent("""
    import sys
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()
    window.show()
    print("torch loaded:", "torch" in sys.modules)
    app.processEvents()
    assert window.isVisible()
    window.close()
""")


def run_python(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CHATGUI_DATA_DIR": str(tmp_path / "data"),
                   "CHATGUI_CONFIG_DIR": str(tmp_path / "config"), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=environment, cwd=ROOT)


def test_window_appears_before_torch_is_imported(tmp_path, tiny_model_path):
    result = run_python(SHOW_WINDOW, tmp_path, CHATGUI_MODEL=str(tiny_model_path))
    assert result.returncode == 0, result.stderr
    assert "torch loaded: False" in result.stdout
    assert "Destroyed while thread" not in result.stderr


def test_app_main_runs_and_quits(tmp_path, tiny_model_path):
    """`python -m chatgui` with --model: loads the model, then quits cleanly on Ctrl+Q."""
    code = textwrap.dedent("""
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        import chatgui.ui.app as app_module
        def poke():
            window = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow")
            def check():
                if window.model_controller.loaded:
                    print("loaded", window.model_controller.loaded.name)
                    window.close()
                else:
                    QTimer.singleShot(50, check)
            check()
        QTimer.singleShot(0, poke)
        raise SystemExit(app_module.main(["--model", MODEL, "--no-fetch"]))
    """).replace("MODEL", repr(str(tiny_model_path)))
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "loaded tiny" in result.stdout
    assert "Destroyed while thread" not in result.stderr


def test_a_data_folder_that_cannot_be_locked_stops_the_app(tmp_path):
    """The lock file cannot be made (here a folder is where it goes): the app says why and
    stops before any window or store exists; running unlocked let two instances delete each
    other's messages."""
    (tmp_path / "data" / ".chatgui.lock").mkdir(parents=True)
    code = textwrap.dedent("""
        from PySide6.QtWidgets import QMessageBox
        import chatgui.ui.main_window as main_window
        shown = []
        QMessageBox.exec = lambda box: shown.append(box.text()) or 0
        class NoWindow:
            def __init__(self, *args, **kwargs):
                raise SystemExit("a window was made")
        main_window.MainWindow = NoWindow
        import chatgui.ui.app as app_module
        print("exit", app_module.main(["--no-fetch"]))
        print("shown", shown)
    """)
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exit 1" in result.stdout
    assert "cannot start" in result.stdout and "a folder is in the way" in result.stdout
    assert not (tmp_path / "data" / "history.sqlite3").exists()


def test_launch_options(monkeypatch):
    monkeypatch.delenv("CHATGUI_MODEL", raising=False)
    monkeypatch.delenv("CHATGUI_NO_FETCH", raising=False)
    options, rest = parse_args(["--model", "/m.gguf", "--device", "cpu", "--no-fetch", "-platform", "offscreen"])
    assert options == LaunchOptions(model="/m.gguf", device="cpu", fetch="never")
    assert rest == ["-platform", "offscreen"]
    assert options_from_env({"CHATGUI_MODEL": "/x.gguf", "CHATGUI_NO_FETCH": "1"}).fetch == "never"
    assert options_from_env({"CHATGUI_AUTO_FETCH": "yes"}).fetch == "auto"
    assert options_from_env({}) == LaunchOptions()


def welcome_shown(window) -> bool:
    return window.model_controller.welcome_shown and window.chat_stack.currentWidget() is window.welcome


def test_first_run_offers_download_in_the_window(qtbot, first_run_window):
    from chatgui.models.suggest import recommended_entry
    window = first_run_window()
    window.show()
    qtbot.waitUntil(lambda: welcome_shown(window), timeout=5000)
    card = window.welcome
    from chatgui.ui.backends.model_controller import RUNS_WELL
    recommended = recommended_entry(window.settings.context_length or 4096, architectures=RUNS_WELL)
    assert card.model_name.text() == recommended.name
    assert card.download_button.isVisible() and card.file_button.isVisible()
    assert window.pill.state == "none"
    card.download_button.click()
    assert [spec.key for spec in window.started_downloads] == [recommended.id]
    assert card.is_downloading() and window.status.progress.isVisible() and window.pill.state == "loading"
    assert window.notices.texts() == []   # the card says it all: no notice on top of it
    window.close()


def test_no_fetch_offers_only_a_file(qtbot, first_run_window):
    window = first_run_window(fetch=False)
    window.show()
    qtbot.waitUntil(lambda: welcome_shown(window), timeout=5000)
    assert not window.welcome.download_button.isVisible() and window.welcome.file_button.isVisible()
    assert window.findChild(QWidget, "messageInput").isEnabled()
    window.close()


def test_main_installs_the_desktop_entry_without_a_window(tmp_path, monkeypatch):
    from chatgui import desktop_entry
    from chatgui.ui.app import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setattr(desktop_entry.sys, "platform", "linux")
    assert main(["--install-desktop-entry"]) == 0
    assert desktop_entry.desktop_file_path().is_file()
    assert main(["--uninstall-desktop-entry"]) == 0
    assert not desktop_entry.desktop_file_path().exists()


def test_first_run_download_shows_progress_can_be_cancelled_and_tried_again(qtbot, first_run_window, monkeypatch):
    from chatgui.models import fit
    from chatgui.models.catalog import default_entry, get_entry
    from chatgui.models.transfer import Progress
    from chatgui.ui.backends.model_controller import RUNS_WELL
    # a computer with 16 GB free: a model bigger than the default is recommended, never a MoE one
    # (the engine runs those slowly until their experts have kernels)
    monkeypatch.setattr(fit, "machine_memory", lambda: fit.Memory(16 << 30, 32 << 30, "RAM"))
    window = first_run_window()
    downloads = window.models_page.downloads
    started, cancelled = window.started_downloads, []
    monkeypatch.setattr(downloads, "cancel", lambda spec: cancelled.append(spec) or downloads.cancelled.emit(spec.key))
    window.show()
    qtbot.waitUntil(lambda: welcome_shown(window), timeout=5000)
    card = window.welcome
    card.download_button.click()
    spec = started[0]
    offered = get_entry(spec.key)
    assert offered.name == card.model_name.text() and offered.size > default_entry().size
    assert offered.architecture in RUNS_WELL
    downloads.progress.emit(spec.key, Progress(done=34_000_000, total=98_000_000, speed=5_100_000, eta=12.5))
    qtbot.waitUntil(lambda: "35%" in card.progress_text.text(), timeout=5000)
    text = card.progress_text.text()
    assert "34 / 98 MB" in text and "5.1 MB/s" in text and "0:12 left" in text
    assert card.progress.value() == int(34 / 98 * 1000) and "35%" in window.pill.full_text
    card.cancel_button.click()
    assert cancelled == [spec]
    assert welcome_shown(window) and not card.is_downloading() and card.download_button.isVisible()
    assert window.model_controller.waiting is None and window.pill.state == "none"
    card.download_button.click()
    downloads.failed.emit(spec.key, "The connection was lost.")
    assert card.error.isVisible() and "connection was lost" in card.error.text()
    assert card.download_button.text() == "Try again" and welcome_shown(window)
    window.close()


def test_first_run_on_a_small_computer_recommends_the_default_model(qtbot, first_run_window, monkeypatch):
    from chatgui.models import fit
    from chatgui.models.catalog import default_entry
    monkeypatch.setattr(fit, "machine_memory", lambda: fit.Memory(400 << 20, 1 << 30, "RAM"))
    window = first_run_window()
    window.show()
    qtbot.waitUntil(lambda: welcome_shown(window), timeout=5000)
    assert window.welcome.model_name.text() == default_entry().name and window.welcome.download_button.isVisible()
    window.close()

"""Shared fixtures. Every test gets its own data and config folders; Qt runs offscreen."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402

from tiny_gguf import write_tiny_model  # noqa: E402

# llama.cpp's answers on the real models, made by tests/data/make_reference.py (in the repo, so a
# clone anywhere runs the default model's parity tests).
DATA = Path(__file__).resolve().parent / "data"
REFERENCE = DATA / "smollm2-135m-q4_1.llamacpp.json"


@pytest.fixture(scope="session")
def real_model_path():
    """The real default model, found or fetched the real way (into the user's models folder,
    so later runs reuse it)."""
    from chatgui.models.default_model import default_model_path

    saved = {k: os.environ.pop(k) for k in ("CHATGUI_DATA_DIR", "CHATGUI_CONFIG_DIR") if k in os.environ}
    try:
        path = default_model_path(fetch=True)
    finally:
        os.environ.update(saved)
    assert path is not None and path.is_file()
    return path


@pytest.fixture(scope="session")
def real_model(real_model_path):
    from chatgui.engine import load_model

    return load_model(real_model_path, device="cpu")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATGUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATGUI_CONFIG_DIR", str(tmp_path / "config"))
    yield


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    from chatgui.engine import load_model

    return load_model(tiny_model_path, device="cpu")


# ---- UI (tests/test_ui*.py) ----------------------------------------------------------------

@pytest.fixture
def make_window(qtbot, tiny_model_path, monkeypatch):
    """Build main windows on the tiny test model (CHATGUI_MODEL), never offering a download.
    `make_window(wait_model=True)` shows the window and waits until the model is loaded. Every
    window is closed at the end and its engine thread must have finished."""
    monkeypatch.setenv("CHATGUI_MODEL", str(tiny_model_path))
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow

    windows = []

    def make(wait_model: bool = True, **kwargs):
        window = MainWindow(**kwargs)
        windows.append(window)
        # The default size: a first window fits the screen, and offscreen's is only 800 x 800.
        window.resize(1200, 780)
        window.show()
        if wait_model:
            qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.engine.wait_closed(10_000), "the engine thread did not finish"
        window.deleteLater()


def shown_notices(area) -> list[str]:
    """The keys of the notices a NoticeArea shows now (not those waiting hidden), sorted."""
    from chatgui.ui.common.notices import Notice
    return sorted(n.key for n in area.findChildren(Notice) if not n.isHidden())


@pytest.fixture
def first_run_window(qtbot, monkeypatch):
    """`first_run_window(fetch=True)`: a main window on a computer with no model yet. Downloads it
    starts are recorded in `window.started_downloads` (their specs) instead of running."""
    def make(fetch: bool = True):
        monkeypatch.delenv("CHATGUI_MODEL", raising=False)
        if fetch:
            monkeypatch.delenv("CHATGUI_NO_FETCH", raising=False)
        else:
            monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
        import chatgui.ui.backends.model_controller as mc
        monkeypatch.setattr(mc, "find_default_model", lambda *a, **k: None)
        from chatgui.ui.main_window import MainWindow
        window = MainWindow()
        qtbot.addWidget(window)
        window.started_downloads = []
        monkeypatch.setattr(window.models_page.downloads, "start", window.started_downloads.append)
        return window
    return make


# ---- the fault suite (issue 29): `python -m pytest -m stress` runs every hostile-input and failure
# case on its own; CI runs it with the rest, in this fast form (small files, bounded loops).
STRESS_FILES = {"test_store_faults.py", "test_store_import_hostile.py", "test_store_hostile.py",
                "test_server_safety.py", "test_crash_safety.py"}
STRESS_TESTS = {
    "test_chat_template.py": ("hostile", "bomb"),
    "test_engine_loading.py": ("truncated", "nested", "vocabulary_far_larger", "fifo", "cut_short",
                               "rewritten_in_place", "millions"),
    "test_models_download.py": ("not_a_gguf", "another_range", "spliced", "validator", "trickle", "short_partial",
                                "differs_from_the_hubs", "hub_file_changed"),
    "test_server.py": ("disconnects", "gives_up", "longer_than_the_whole_context", "too_many", "surrogate",
                       "tiny_temperature", "echo"),
    "test_constrained.py": ("gives_up",),
}


def pytest_collection_modifyitems(config, items):
    """Marks the fault suite's tests `stress`. big_model tests fetch or load files of hundreds of
    MB: they run only when asked for (`-m big_model`), never in the default run or CI."""
    skip_big = None if "big_model" in (config.getoption("-m") or "") else \
        pytest.mark.skip(reason="needs a big model file: run with -m big_model")
    for item in items:
        file = Path(str(item.fspath)).name
        if file in STRESS_FILES or any(word in item.name for word in STRESS_TESTS.get(file, ())):
            item.add_marker(pytest.mark.stress)
        if skip_big is not None and "big_model" in item.keywords:
            item.add_marker(skip_big)

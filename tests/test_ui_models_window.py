"""The Models page inside the app: opened from the settings' Models… button and File > Models…,
a model loaded from it becomes the app's model, and the picker follows what is installed."""
import shutil

from PySide6.QtCore import Qt

from chatgui.common.paths import models_dir
from chatgui.ui.models.page import InstalledRow


def test_models_page_opens_loads_a_model_and_updates_the_picker(qtbot, make_window, tiny_model_path):
    window = make_window()
    extra = models_dir() / "my-extra-model.Q4_K_M.gguf"
    shutil.copyfile(tiny_model_path, extra)
    qtbot.mouseClick(window.panel.findChild(type(window.panel.load_button), "modelsButton"), Qt.MouseButton.LeftButton)
    models = window.models_page.window
    assert models is not None and models.isVisible()
    assert {"smollm2-135m", "qwen2.5-coder-1.5b"} <= set(models.page.cards)
    rows = models.findChildren(InstalledRow)
    row = next(r for r in rows if r.path == extra)
    qtbot.mouseClick(row.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None and window.model_controller.loaded.path == str(extra),
                    timeout=30_000)
    assert not models.isVisible()                      # back to the conversation
    assert window.model_controller.loaded.name == "my-extra-model (Q4_K_M)"   # one display name, from the file name
    picker = window.panel.model_combo
    assert str(extra) in [picker.itemData(i) for i in range(picker.count())]
    # File > Models… opens the same window again
    window.models_action.trigger()
    assert window.models_page.window is models and models.isVisible()
    models.close()


def test_the_settings_show_the_weight_cache_and_clear_it(qtbot, make_window):
    from chatgui.engine.weight_cache import cache_dir
    window = make_window()
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "some-model.cache").write_bytes(b"\0" * 3_000_000)
    window.model_controller.show_cache_size()
    assert window.panel.cache_label.text() == "3 MB on disk"
    qtbot.mouseClick(window.panel.findChild(type(window.panel.load_button), "clearCacheButton"),
                     Qt.MouseButton.LeftButton)
    assert window.panel.cache_label.text() == "0 MB on disk" and not any(folder.iterdir())
    assert "3 MB freed" in window.status.currentMessage()


def test_the_loaded_model_is_in_use_on_the_models_page(make_window, tiny_model_path):
    window = make_window()                               # the tiny model, loaded
    page = window.open_models().page
    assert page.in_use == str(tiny_model_path)

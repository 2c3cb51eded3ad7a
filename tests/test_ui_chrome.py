"""The window's chrome (issue 30): the model pill, the welcome card, the chat list's menu, the side
panels; and the defects 2 (a missing model), 3 (the first run at 900 x 600) and 7 (one name)."""
from __future__ import annotations

import shutil

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QScrollArea, QTabBar, QWidget

from chatgui.common.paths import models_dir
from chatgui.models.naming import display_name
from chatgui.store import EXPORT_FORMATS, load_settings, save_settings

LONG_NAME = "A-Very-Long-Model-Name-That-Goes-On-And-On-7B-Instruct-v0.3-Q4_K_M"


def scrolled(widget: QWidget, window: QWidget) -> bool:
    """A widget inside a scroll area's viewport: outside the viewport it is scrolled away, not cut."""
    w = widget.parentWidget()
    while w is not None and w is not window:
        area = w.parentWidget()
        if isinstance(area, QAbstractScrollArea) and area.viewport() is w:
            return True
        w = area
    return False


def outside_the_window(window) -> list[str]:
    """Widgets that reach past the window's edge, and scroll areas that cut their content off at
    the side (no horizontal scroll bar, content wider than what shows)."""
    bad = []
    for area in window.findChildren(QScrollArea):
        if (area.isVisible() and area.widget() is not None and not scrolled(area, window)
                and area.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
                and area.widget().width() > area.viewport().width()):
            bad.append(f"{area.objectName() or type(area).__name__} cuts off its content")
    for w in window.findChildren(QWidget):
        if not w.isVisible() or w.isWindow() or scrolled(w, window):
            continue
        rect = QRect(w.mapTo(window, QPoint(0, 0)), w.size())
        if isinstance(w, QTabBar) and w.parentWidget() is window and not rect.intersects(window.rect()):
            continue   # QMainWindow parks the dock area's tab bar there while a single dock shows
        if not window.rect().contains(rect):
            bad.append(f"{type(w).__name__} {w.objectName()!r} {rect.getRect()}")
    return bad


def install(tiny_model_path, *names: str) -> list[str]:
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        shutil.copyfile(tiny_model_path, folder / name)
        paths.append(str(folder / name))
    return paths


def a_window(qtbot, monkeypatch, size=None, wait_model=True):
    """A main window as a user starts it: no --model, what is installed and the saved settings."""
    monkeypatch.delenv("CHATGUI_MODEL", raising=False)
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    if size:
        window.resize(*size)
    window.show()
    if wait_model:
        qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    return window


def close(window) -> None:
    window.close()
    assert window.engine.wait_closed(10_000)


# -- defect 3: the first run in a 900 x 600 window ---------------------------------------------
def test_the_first_window_fits_a_small_screen(qtbot, make_window, monkeypatch):
    """On a screen smaller than the default 1200 x 780 (offscreen's is 800 x 800) the first window
    fits the screen: nothing of it lies past the screen's edge, and the chat keeps its width."""
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()   # no settings saved yet: the first run
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    qtbot.wait(100)
    free = window.screen().availableGeometry()
    assert free.width() < 1200
    assert free.contains(window.frameGeometry())
    assert outside_the_window(window) == [] and window.view.width() >= 480
    close(window)


def test_a_first_run_at_900x600_keeps_everything_inside_and_the_chat_wide(qtbot, make_window, monkeypatch):
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()   # no settings saved yet: the first run
    qtbot.addWidget(window)
    window.resize(900, 600)
    window.show()
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    qtbot.wait(100)   # the layout settles
    assert window.width() == 900
    assert outside_the_window(window) == []
    assert window.view.width() >= 480
    assert not window.panel.isVisible() and not window.settings_button.isChecked()
    # the gear opens the settings panel: a side panel, not a window of its own over the chat
    window.settings_button.click()
    qtbot.waitUntil(lambda: window.panel.isVisible(), timeout=5000)
    assert not window.panel.isFloating() and window.settings_button.isChecked()
    qtbot.waitUntil(lambda: window.chat_list.width() <= 170, timeout=5000)   # the list narrows first
    qtbot.wait(300)   # the side column is fitted too
    assert window.panel.titleBarWidget() is not None and window.panel.titleBarWidget().height() == 0
    assert outside_the_window(window) == []
    close(window)


def test_the_inspector_is_a_tab_of_the_side_panel_and_never_covers_the_composer(qtbot, make_window):
    window = make_window()
    window.resize(900, 600)
    qtbot.wait(100)
    window.inspector_button.click()   # the chart button beside the gear (View > Sampling inspector)
    qtbot.waitUntil(lambda: window.explain.dock.isVisible(), timeout=5000)
    assert window.inspector_button.isChecked()
    qtbot.wait(100)
    dock = window.explain.dock
    assert not dock.isFloating()
    send = window.input_bar.findChild(QWidget, "sendButton")
    composer = QRect(send.mapTo(window, QPoint(0, 0)), send.size())
    inspector = QRect(dock.mapTo(window, QPoint(0, 0)), dock.size())
    assert not composer.intersects(inspector)
    assert outside_the_window(window) == []
    window.resize(1400, 800)   # room again: the settings come back, the other tab of the same column
    qtbot.waitUntil(lambda: window.panel.isVisible(), timeout=5000)
    assert dock in window.tabifiedDockWidgets(window.panel)
    window.inspector_button.click()   # and the same button puts it away
    qtbot.waitUntil(lambda: not dock.isVisible(), timeout=5000)
    assert not window.inspector_button.isChecked()


def test_the_settings_panel_starts_closed_below_1100_px_and_open_above(qtbot, make_window):
    narrow = make_window(wait_model=False)
    narrow.resize(1000, 700)
    qtbot.waitUntil(lambda: not narrow.panel.isVisible(), timeout=5000)
    narrow.resize(1300, 800)
    qtbot.waitUntil(lambda: narrow.panel.isVisible(), timeout=5000)
    assert narrow.settings_button.isChecked()


def test_the_chat_list_gives_width_back_when_the_window_is_wide_again(qtbot, make_window):
    """The list narrows for a narrow window; once the settings panel has been put away or the
    window is wide again, it has the width the user chose (it stayed at 160 px before)."""
    window = make_window(wait_model=False)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.panel.isVisible(), timeout=5000)
    chosen = window.main_split.sizes()[0]
    assert chosen > 200
    window.resize(900, 600)
    qtbot.waitUntil(lambda: not window.panel.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: window.main_split.sizes()[0] == chosen, timeout=5000)
    window.resize(640, 600)
    qtbot.waitUntil(lambda: window.main_split.sizes()[0] < chosen, timeout=5000)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.main_split.sizes()[0] == chosen, timeout=5000)


# -- defect 2: a missing model -----------------------------------------------------------------
def test_a_missing_saved_model_gives_way_to_an_installed_one_without_asking(qtbot, monkeypatch, tiny_model_path):
    kept, = install(tiny_model_path, "kept-model.Q4_K_M.gguf")
    settings = load_settings()
    settings.model_path = str(models_dir() / "deleted-model.gguf")   # gone since the last run
    save_settings(settings)
    window = a_window(qtbot, monkeypatch)
    assert window.model_controller.loaded.path == kept
    assert not window.model_controller.welcome_shown and window.notices.texts() == []
    assert window.pill.state == "ready" and window.pill.full_text == display_name(kept)
    # the picker lists what is installed: the missing file is not in it
    combo = window.panel.model_combo
    assert "deleted-model" not in " ".join(combo.itemText(i) for i in range(combo.count()))
    close(window)
    assert load_settings().model_path == kept   # remembered: the next start goes straight to it


def test_a_saved_model_that_fails_to_load_gives_way_to_another_and_says_so(qtbot, monkeypatch, tiny_model_path):
    good, = install(tiny_model_path, "good-model.Q4_K_M.gguf")
    broken = models_dir() / "broken-model.gguf"
    broken.write_bytes(b"GGUF and then nothing")
    settings = load_settings()
    settings.model_path = str(broken)
    save_settings(settings)
    window = a_window(qtbot, monkeypatch)
    assert window.model_controller.loaded.path == good and not window.model_controller.welcome_shown
    said = window.notices.get("load-fallback")
    assert said is not None and display_name(good) in said.text()
    combo = window.panel.model_combo
    assert combo.currentData() == good
    close(window)


def test_deleting_the_loaded_model_asks_and_the_next_start_loads_another(qtbot, monkeypatch, tiny_model_path):
    first, second = install(tiny_model_path, "first-model.Q4_K_M.gguf", "second-model.Q4_K_M.gguf")
    settings = load_settings()
    settings.model_path = first
    save_settings(settings)
    window = a_window(qtbot, monkeypatch)
    assert window.model_controller.loaded.path == first
    page = window.open_models().page
    asked = []
    monkeypatch.setattr(page, "confirm", lambda title, text, primary: asked.append(text) or True)
    row = next(r for r in page.findChildren(QWidget) if getattr(r, "delete_button", None) is not None
               and getattr(r, "path", None) is not None and str(r.path) == first)
    row.delete_button.click()
    assert len(asked) == 1 and "in use" in asked[0] and display_name(second) in asked[0]
    qtbot.waitUntil(lambda: window.model_controller.loaded.path == second, timeout=60_000)
    assert window.pill.full_text == display_name(second)
    window.open_models().close()
    close(window)
    again = a_window(qtbot, monkeypatch)
    assert again.model_controller.loaded.path == second and not again.model_controller.welcome_shown
    close(again)


def test_a_file_that_failed_to_load_leaves_the_picker(qtbot, make_window, tmp_path):
    window = make_window()
    combo = window.panel.model_combo
    notes = tmp_path / "notes.gguf"
    notes.write_bytes(b"not a model at all")
    window.model_controller.load(str(notes), remember=True)
    qtbot.waitUntil(lambda: window.notices.get("load-error") is not None, timeout=30_000)
    items = [combo.itemData(i) for i in range(combo.count())]
    assert str(notes) not in items
    assert combo.currentData() == window.model_controller.loaded.path
    assert window.pill.state == "ready" and window.pill.path == window.model_controller.loaded.path


# -- the model pill and defect 7 ---------------------------------------------------------------
def test_the_pill_shows_one_name_and_the_state(qtbot, monkeypatch, tiny_model_path):
    path, = install(tiny_model_path, f"{LONG_NAME}.gguf")
    window = a_window(qtbot, monkeypatch, size=(900, 600), wait_model=False)
    qtbot.waitUntil(lambda: window.pill.state in ("loading", "ready"), timeout=10_000)
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    name = display_name(path)
    pill = window.pill
    # one name: the pill, the loaded model, the settings picker and a reply's header agree
    assert window.model_controller.loaded.name == name and pill.full_text == name
    assert window.panel.model_combo.currentText() == name
    qtbot.wait(50)
    # elided, not cut off: it ends in "…", fits in the pill, and the tooltip holds the whole name
    assert pill.shown_text().endswith("…") and pill.shown_text() != name
    assert pill.fontMetrics().horizontalAdvance(pill.text()) <= pill.width()
    assert name in pill.toolTip() and path in pill.toolTip()
    assert pill.state == "ready"
    close(window)


def test_the_pill_menu_switches_models_and_opens_the_models_page(qtbot, monkeypatch, tiny_model_path):
    first, second = install(tiny_model_path, "first-model.Q4_K_M.gguf", "second-model.Q4_K_M.gguf")
    window = a_window(qtbot, monkeypatch)
    loaded = window.model_controller.loaded.path
    window.pill.menu_.aboutToShow.emit()   # (what opening the menu does)
    actions = {a.text(): a for a in window.pill.menu_.actions()}
    assert actions[display_name(loaded)].isChecked()
    other = second if loaded == first else first
    actions[display_name(other)].trigger()
    assert window.pill.state == "loading"
    qtbot.waitUntil(lambda: window.model_controller.loaded.path == other, timeout=60_000)
    assert window.pill.state == "ready"
    opened = []
    monkeypatch.setattr(window, "open_models", lambda: opened.append(True))
    window.model_controller.models_requested.disconnect()
    window.model_controller.models_requested.connect(window.open_models)
    window.pill.menu_.aboutToShow.emit()
    next(a for a in window.pill.menu_.actions() if a.text().startswith("Download or manage")).trigger()
    assert opened == [True]
    close(window)


def test_a_failed_first_load_shows_the_welcome_card_and_a_red_pill(qtbot, monkeypatch, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but nothing more")
    monkeypatch.setenv("CHATGUI_MODEL", str(broken))
    monkeypatch.setenv("CHATGUI_NO_FETCH", "1")
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model_controller.welcome_shown, timeout=30_000)
    assert window.pill.state == "failed" and "broken" in window.pill.full_text
    assert window.chat_stack.currentWidget() is window.welcome
    close(window)


# -- the welcome card --------------------------------------------------------------------------
def test_the_welcome_card_recommends_the_best_model_that_fits():
    from chatgui.models.catalog import default_entry
    from chatgui.models.fit import FITS, Memory, entry_fit
    from chatgui.models.suggest import recommended_entry
    roomy = Memory(free=64 << 30, total=64 << 30, where="RAM")
    best = recommended_entry(4096, roomy)
    assert best.is_chat and entry_fit(best, 4096, roomy) == FITS
    assert best.size > default_entry().size   # not always the smallest
    assert recommended_entry(4096, Memory(free=100 << 20, total=200 << 20, where="RAM")) == default_entry()
    middle = Memory(free=1400 << 20, total=4 << 30, where="RAM")
    assert default_entry().size < recommended_entry(4096, middle).size <= best.size
    dense = recommended_entry(4096, roomy, architectures={"llama", "qwen2", "qwen3", "gemma3"})
    assert dense.architecture in {"llama", "qwen2", "qwen3", "gemma3"}


def test_the_welcome_card_never_clips_at_900x600(qtbot, first_run_window):
    window = first_run_window()
    window.resize(900, 600)
    window.show()
    qtbot.waitUntil(lambda: window.model_controller.welcome_shown, timeout=5000)
    qtbot.wait(100)
    card = window.welcome
    assert card.isVisible() and card.horizontalScrollBar().maximum() == 0
    assert outside_the_window(window) == []
    frame = card.card
    left = frame.mapTo(card.viewport(), QPoint(0, 0)).x()
    assert left >= 0 and left + frame.width() <= card.viewport().width()
    for label in (card.title, card.intro, card.model_name, card.model_facts):
        assert label.wordWrap() and label.width() <= frame.width()
    # the whole card can be seen: it fits or it scrolls (no part is out of reach)
    assert card.widget().height() <= card.viewport().height() or card.verticalScrollBar().maximum() > 0
    window.close()


# -- the chat list -----------------------------------------------------------------------------
def test_the_chat_list_has_new_chat_on_top_and_a_menu_per_chat(qtbot, make_window, monkeypatch):
    window = make_window(wait_model=False)
    panel = window.chat_list
    assert panel.new_button.geometry().top() < panel.list.geometry().top()
    for name in ("renameChatButton", "deleteChatButton"):
        assert panel.findChild(QWidget, name) is None   # no buttons under the list any more
    window.current.append("user", "first question")
    window.current.title = "First"
    window.save_chat(window.current)
    chat_id = window.current.id
    panel.new_button.click()
    assert window.current.id != chat_id
    window.current.append("user", "second")
    window.save_chat(window.current)
    window.refresh_chat_list()
    menu = panel.menu_for(chat_id)
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    exports = [f"Export as {spec.name}…" for spec in EXPORT_FORMATS.values()]   # one per format
    assert texts == ["Rename", *exports, "Delete"] and "Export as &JSON…" in exports
    exported = []
    monkeypatch.setattr(window, "export_dialog", lambda kind: exported.append((window.current.id, kind)))
    next(a for a in menu.actions() if a.text() == "Export as &JSON…").trigger()
    assert exported == [(chat_id, "json")]
    next(a for a in panel.menu_for(chat_id).actions() if a.text() == "Delete").trigger()
    assert chat_id not in panel.chat_ids()


def test_a_click_on_a_rows_dots_opens_its_menu(qtbot):
    from PySide6.QtWidgets import QMenu

    from chatgui.ui.chat.chat_list import ChatListPanel, more_rect
    panel = ChatListPanel()
    qtbot.addWidget(panel)
    panel.resize(240, 400)
    import time
    panel.set_chats([("a", "Alpha", time.time()), ("b", "Beta", time.time())], "a")
    panel.show()
    qtbot.waitExposed(panel)
    item = panel.list.item(2)   # under the "Today" header and Alpha
    rect = panel.list.visualItemRect(item)
    selected = []
    panel.chat_selected.connect(selected.append)
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=more_rect(rect).center())
    menus = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
    assert len(menus) == 1 and "Rename" in [a.text() for a in menus[0].actions()]
    assert selected == []   # the dots opened the menu; the row was not opened
    menus[0].close()
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selected == ["b"]


def test_a_long_name_in_the_settings_picker_is_elided_not_cut(qtbot):
    from chatgui.ui.common.elided_combo import ElidedComboBox
    combo = ElidedComboBox()
    qtbot.addWidget(combo)
    combo.addItem(LONG_NAME)
    combo.resize(160, combo.sizeHint().height())
    combo.show()
    qtbot.waitExposed(combo)
    assert combo.shown_text().endswith("…") and len(combo.shown_text()) < len(LONG_NAME)
    combo.grab()   # paints without error

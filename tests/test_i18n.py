"""The interface in English and Simplified Chinese: choosing the language, the translation files
being complete and up to date, the window showing the translations; and Send waiting for the
first model (a message sent while it downloads used to get "No model is loaded" and no reply)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PySide6.QtCore import QLocale, QTranslator
from PySide6.QtWidgets import QFormLayout

from chatgui.i18n import qm_path, ts_path
from chatgui.ui.common.i18n import current_language, install_translators, remove_translators, resolve_language

ROOT = Path(__file__).resolve().parents[1]
# The interface, and the sampler registry's labels (shown by the settings panel and the inspector).
UI_SOURCES = sorted((ROOT / "chatgui" / "ui").rglob("*.py")) + [ROOT / "chatgui" / "common" / "samplers.py",
                                                            ROOT / "chatgui" / "common" / "backends.py",
                                                            ROOT / "chatgui" / "session" / "failures.py"]
FIELD = re.compile(r"\{\w*\}")


def ts_messages(path: Path) -> dict[tuple[str, str], ET.Element]:
    """(context, source) -> the <message> element."""
    out = {}
    for context in ET.parse(path).getroot().iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            out[(name, message.findtext("source") or "")] = message
    return out


def qt_tool(name: str) -> str:
    found = shutil.which(f"pyside6-{name}") or shutil.which(f"pyside6-{name}", path=str(Path(sys.executable).parent))
    assert found, f"pyside6-{name} (part of PySide6-Essentials) is needed to check the translations"
    return found


@pytest.fixture
def language(qapp, monkeypatch):
    """language("zh_CN") installs the translations as the app does at startup; undone afterwards."""
    installed = []

    def use(code: str) -> str:
        monkeypatch.setenv("CHATGUI_LANG", code)
        installed.extend(install_translators(resolve_language(), qapp))
        return current_language()

    yield use
    remove_translators(installed, qapp)


def settings_label(window, field) -> str:
    form = field.parentWidget().layout()
    assert isinstance(form, QFormLayout)
    return form.labelForField(field).text()


# -- choosing the language ------------------------------------------------------------------------
def test_language_choice_env_setting_and_system_locale():
    zh, en, de = QLocale("zh_CN"), QLocale("en_US"), QLocale("de_DE")
    assert resolve_language("system", env={}, system=zh) == "zh_CN"
    assert resolve_language("system", env={}, system=en) == "en"
    assert resolve_language("system", env={}, system=de) == "en"          # no German: English
    assert resolve_language("system", env={}, system=QLocale("zh_TW")) == "zh_CN"
    assert resolve_language("en", env={}, system=zh) == "en"              # the setting wins over the OS
    assert resolve_language("zh_CN", env={}, system=en) == "zh_CN"
    assert resolve_language("en", env={"CHATGUI_LANG": "zh_CN"}, system=en) == "zh_CN"   # the variable wins
    assert resolve_language("zh_CN", env={"CHATGUI_LANG": "en_US.UTF-8"}, system=zh) == "en"
    assert resolve_language("bogus", env={"CHATGUI_LANG": ""}, system=en) == "en"


# -- the translation files ------------------------------------------------------------------------
def test_ts_is_complete():
    messages = ts_messages(ts_path("zh_CN"))
    assert len(messages) > 200
    problems = []
    for (context, source), message in messages.items():
        translation = message.find("translation")
        text = translation.text or "" if translation is not None else ""
        kind = translation.get("type") if translation is not None else "missing"
        if kind or not text.strip():
            problems.append(f"{context}: {source!r} is {kind or 'empty'}")
        elif sorted(FIELD.findall(source)) != sorted(FIELD.findall(text)):   # .format() would fail
            problems.append(f"{context}: {source!r} -> {text!r}: the {{fields}} differ")
        elif re.search(r"&\w", source) and not re.search(r"&\w", text):
            problems.append(f"{context}: {source!r} -> {text!r}: no keyboard accelerator")
    assert not problems, "\n".join(problems)


def test_ts_has_every_string_of_the_ui(tmp_path):
    """pyside6-lupdate finds exactly the strings the committed .ts has: run
    packaging/update_translations.sh (and translate) after changing a string in chatgui/ui."""
    fresh = tmp_path / "fresh_zh_CN.ts"
    subprocess.run([qt_tool("lupdate"), "-silent", "-no-obsolete", "-locations", "none",
                    *map(str, UI_SOURCES), "-ts", str(fresh)], check=True, cwd=ROOT, capture_output=True)
    extracted, committed = set(ts_messages(fresh)), set(ts_messages(ts_path("zh_CN")))
    assert not extracted - committed, f"not in the .ts yet: {sorted(extracted - committed)}"
    assert not committed - extracted, f"no longer in the UI: {sorted(committed - extracted)}"


def test_qm_loads_and_matches_the_ts(qapp):
    translator = QTranslator()
    assert translator.load(str(qm_path("zh_CN")))
    stale = [(context, source) for (context, source), message in ts_messages(ts_path("zh_CN")).items()
             if translator.translate(context, source) != message.findtext("translation")]
    assert not stale, f"the .qm is older than the .ts (run packaging/update_translations.sh): {stale[:5]}"
    assert translator.translate("InputBar", "Send") == "发送"


# -- the window in each language ------------------------------------------------------------------
def test_window_in_chinese(language, make_window):
    assert language("zh_CN") == "zh_CN"
    window = make_window(wait_model=False)
    assert window.input_bar.send_button.text() == "发送"
    assert window.input_bar.stop_button.text() == "停止"
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["文件(&F)", "对话(&C)", "视图(&V)"]   # the explain actions joined them, no second "View"
    view = window.view_menu.actions()
    assert "词元视图(&T)" in [a.text() for a in view] and view[-1].menu() is window.language_menu
    assert window.new_action.text() == "新建对话(&N)"
    panel = window.panel
    assert panel.windowTitle() == "设置"
    assert settings_label(window, panel.temperature) == "温度"
    assert settings_label(window, panel.repeat_penalty) == "重复惩罚"
    assert settings_label(window, panel.max_new_tokens) == "最大新词元数"
    assert panel.preset.currentText() == "均衡" and panel.preset.currentData() == "Balanced"
    assert window.input_bar.input.placeholderText().startswith("输入消息")
    assert window.language_menu.title() == "语言(&L)"


def test_window_in_english(language, make_window):
    assert language("en") == "en"
    window = make_window(wait_model=False)
    assert window.input_bar.send_button.text() == "Send"
    assert [a.text() for a in window.menuBar().actions()][:3] == ["&File", "&Chat", "&View"]
    assert settings_label(window, window.panel.temperature) == "Temperature"
    assert window.panel.preset.currentText() == "Balanced"


def test_language_menu_saves_the_choice(language, make_window, qtbot):
    from chatgui.store import load_settings

    language("en")
    window = make_window(wait_model=False)
    actions = window.language_menu.actions_by_code
    assert [a.text() for a in actions.values()] == ["System language", "English", "简体中文"]
    assert actions["system"].isChecked()
    actions["zh_CN"].trigger()
    assert actions["zh_CN"].isChecked()
    qtbot.waitUntil(lambda: load_settings().language == "zh_CN", timeout=2000)   # (with the other settings)
    note = window.notices.get("language").text()
    assert "next start" in note and "下次启动" in note   # said in both languages


def test_default_model_language_note_once(language, make_window, tiny_model_path, tmp_path, monkeypatch):
    """In Chinese, loading the default model says once that it mostly speaks English."""
    from chatgui.models.default_model import DEFAULT_MODEL_FILE

    default = tmp_path / DEFAULT_MODEL_FILE   # the tiny model under the default model's name
    shutil.copyfile(tiny_model_path, default)
    language("zh_CN")
    monkeypatch.setenv("CHATGUI_MODEL", str(default))
    window = make_window()
    assert "默认模型主要使用英文" in window.notices.get("model-language").text()
    window.close()
    assert make_window().notices.get("model-language") is None


# -- sending while the first model is on its way --------------------------------------------------
def test_send_waits_while_the_default_model_downloads(qtbot, make_window, tiny_model_path, monkeypatch):
    import chatgui.ui.backends.model_controller as mc

    monkeypatch.setattr(mc, "find_default_model", lambda *a, **k: None)
    monkeypatch.delenv("CHATGUI_NO_FETCH")
    monkeypatch.setenv("CHATGUI_AUTO_FETCH", "1")   # first run: download without asking
    monkeypatch.delenv("CHATGUI_MODEL")
    from chatgui.ui.main_window import MainWindow
    window = MainWindow()
    qtbot.addWidget(window)
    fetches = []
    monkeypatch.setattr(window.models_page.downloads, "start", lambda spec: fetches.append(spec))
    window.show()
    qtbot.waitUntil(lambda: len(fetches) == 1, timeout=5000)
    send = window.input_bar.send_button
    assert window.model_controller.waiting == "fetch" and not send.isEnabled()
    assert "downloading" in send.toolTip()
    window.input_bar.input.setPlainText("Hello while downloading")
    assert window.send_message() is False                     # Enter does the same
    assert window.input_bar.text() == "Hello while downloading"   # kept in the box, not lost
    assert not window.current.messages and window.notices.get("no-model") is None
    assert "downloading" in window.status.currentMessage()

    window.models_page.downloads.finished.emit(fetches[0].key, str(tiny_model_path))   # the download is done
    assert not send.isEnabled() and "loading" in send.toolTip()     # now it loads
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    assert send.isEnabled() and window.model_controller.send_blocked_reason() == ""
    window.panel.max_new_tokens.setValue(4)
    assert window.send_message() is True
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=60_000)
    reply = window.current.active_path()[-1]
    assert reply.role == "assistant" and reply.content
    assert not {"no-model", "reply-error", "fetch"} & {n.key for n in window.notices._notices.values()}
    window.close()
    assert window.engine.wait_closed(10_000)


def test_no_model_notice_goes_when_a_model_loads(qtbot, make_window, tiny_model_path, monkeypatch):
    import chatgui.ui.backends.model_controller as mc

    monkeypatch.setattr(mc, "find_default_model", lambda *a, **k: None)
    monkeypatch.delenv("CHATGUI_MODEL")
    window = make_window(wait_model=False)   # CHATGUI_NO_FETCH: the welcome card, no download
    qtbot.waitUntil(lambda: window.model_controller.welcome_shown, timeout=5000)
    assert window.input_bar.send_button.isEnabled()
    window.input_bar.input.setPlainText("Anyone there?")
    assert window.send_message() is False
    # The welcome card already offers a model: no notice, a word in the status bar (issue 15, 8; 30).
    assert window.notices.get("no-model") is None and "No model is loaded yet" in window.status.currentMessage()
    assert window.input_bar.text() == "Anyone there?" and not window.current.messages
    window.model_controller.load(str(tiny_model_path))
    qtbot.waitUntil(lambda: window.model_controller.loaded is not None, timeout=60_000)
    assert window.notices.get("no-model") is None and not window.model_controller.welcome_shown
    # The worker's own refusal (no model there at all) goes away the same way.
    window.replies.notice.emit("no-model", "warning", "No model is loaded.")
    window.model_controller.load(str(tiny_model_path))
    qtbot.waitUntil(lambda: window.notices.get("no-model") is None, timeout=60_000)


# -- the Models page in Chinese (issue 30: its title, fit labels and descriptions stayed English) ------
def test_models_page_in_chinese(language, qtbot, tmp_path):
    from PySide6.QtWidgets import QLabel

    from chatgui.models.manager import DownloadManager
    from chatgui.ui.models import DownloadController
    from chatgui.ui.models.window import ModelsWindow

    language("zh_CN")
    window = ModelsWindow(DownloadController(DownloadManager(tmp_path / "models")), lambda path: None, 4096)
    qtbot.addWidget(window)
    page = window.page
    assert window.windowTitle() == "模型"
    assert "模型" in page.findChild(QLabel, "modelsTitle").text()
    english = {"Fits", "May be slow", "Won't fit", "Unknown"}
    for card in page.cards.values():
        assert card.fit_label.text() not in english and card.fit_label.text()
        described = card.findChild(QLabel, "cardGoodAt").text()
        assert re.search(r"[\u4e00-\u9fff]", described) and card.entry.good_at not in described


def test_every_catalog_text_is_listed_for_translation():
    from chatgui.models.catalog import load_catalog
    from chatgui.ui.models.catalog_text import CATALOG_TEXTS

    needed = {e.good_at for e in load_catalog()} | {lang for e in load_catalog() for lang in e.languages}
    assert not needed - set(CATALOG_TEXTS), "add these to chatgui/ui/models/catalog_text.py (and translate them)"


def test_changing_the_language_offers_to_restart_now(language, make_window):
    from chatgui.ui.common.restart import restart_command

    language("en")
    window = make_window(wait_model=False)
    window.language_menu.actions_by_code["zh_CN"].trigger()
    notice = window.notices.get("language")
    restart = notice.buttons["Restart now"]
    restart.click()                                   # closes as any close does (saved), then starts again
    assert window.restart_requested and not window.isVisible()
    assert restart_command(["/x/bin/chatgui", "--model", "m.gguf"], frozen=False)[1] == [
        "-m", "chatgui", "--model", "m.gguf"]
    assert restart_command(["/x/chatgui", "--model", "m.gguf"], frozen=True)[1] == ["--model", "m.gguf"]


def test_the_welcome_card_describes_the_model_in_chinese(qtbot, language):
    """The welcome card took the catalog's English description as it is; the Models page's card
    translated it."""
    from chatgui.models.catalog import default_entry
    from chatgui.ui.models.welcome_card import WelcomeCard
    assert language("zh_CN") == "zh_CN"
    card = WelcomeCard()
    qtbot.addWidget(card)
    entry = default_entry()
    card.show_offer(entry, "fits")
    assert entry.good_at not in card.model_facts.text()
    assert re.search(r"[\u4e00-\u9fff]", card.model_facts.text().split(" · ")[-1])

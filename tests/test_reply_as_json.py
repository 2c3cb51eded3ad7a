"""'Reply as JSON' (issue 16): the settings' check box makes the reply constrained JSON, locally
through the engine's constrained decoding, remotely through response_format."""
import json

from PySide6.QtCore import Qt

from chatgui.common.types import SamplingSettings
from chatgui.remote import RemoteModel
from chatgui.common.prompt import PromptMessage

HI = [PromptMessage.user("hi")]


def test_json_reply_is_constrained_json_from_the_first_token(tiny_model):
    settings = SamplingSettings(max_new_tokens=24, seed=0)
    free = tiny_model.generate(HI, settings)
    list(free)
    constrained = tiny_model.generate(HI, settings.with_(json_reply=True))
    list(constrained)
    assert constrained.text.startswith('{"') and not free.text.startswith("{")
    # the same settings from a stored dict (a replay) keep the choice
    assert SamplingSettings.from_dict(settings.with_(json_reply=True).to_dict()).json_reply


def test_a_finished_json_reply_parses(tiny_model):
    from chatgui.engine.constrained import json_constraint
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    gen = tiny_model.generate(HI, SamplingSettings(max_new_tokens=40, seed=1, json_reply=True),
                              constraint=json_constraint(tiny_model, schema))
    list(gen)
    assert gen.stats.finish_reason == "stop" and isinstance(json.loads(gen.text)["ok"], bool)


def test_the_remote_backend_asks_the_server_for_json():
    body = RemoteModel("http://127.0.0.1:9/v1", model="m").chat_payload(HI, SamplingSettings(json_reply=True))
    assert body["response_format"] == {"type": "json_object"}
    assert "response_format" not in RemoteModel("http://127.0.0.1:9/v1", model="m").chat_payload(HI, SamplingSettings())


def test_the_settings_check_box_makes_the_next_reply_json(qtbot, make_window):
    window = make_window()
    panel = window.panel
    panel.advanced.setVisible(True)
    panel.max_new_tokens.setValue(12)
    panel.json_reply.setChecked(True)
    assert panel.sampling().json_reply
    window.input_bar.input.setPlainText("Answer in JSON")
    qtbot.mouseClick(window.input_bar.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.replies.busy, timeout=60_000)
    reply = window.current.active_path()[-1]
    assert reply.content.startswith("{") and reply.meta.sampling["json_reply"] is True
    if reply.meta.finish_reason == "stop":          # ended by the model, not by max new tokens
        assert isinstance(json.loads(reply.content), dict)

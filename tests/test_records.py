"""The enums that cross layers, used end to end: finish reasons (stored, sent, read back), backend
kinds, export formats (an unknown one is an error, never another format)."""
from __future__ import annotations

import json

import pytest

from chatgui.common.records import BackendKind, FinishReason, ReplyMeta
from chatgui.store import EXPORT_FORMATS, ExportFormat, HistoryStore
from chatgui.session import Chat


def test_finish_reasons_are_stored_as_their_words_and_read_back_as_members():
    meta = ReplyMeta.from_dict({"finish_reason": "error", "error": "boom"})
    assert meta.finish_reason is FinishReason.ERROR
    assert json.loads(json.dumps(meta.to_dict())) == {"finish_reason": "error", "error": "boom"}
    assert f"{FinishReason.STOP_STRING}" == "stop_string" and str(BackendKind.OPENAI) == "openai"
    # A word this version does not know is kept as it was, not dropped or changed.
    odd = ReplyMeta.from_dict({"finish_reason": "function_call"})
    assert odd.finish_reason is None and odd.to_dict() == {"finish_reason": "function_call"}


def test_a_servers_finish_reason():
    assert FinishReason.from_server("length") is FinishReason.LENGTH
    assert FinishReason.from_server("content_filter") is FinishReason.CONTENT_FILTER
    assert FinishReason.from_server("tool_calls") is FinishReason.STOP
    assert FinishReason.from_server(None) is FinishReason.STOP


def test_every_export_format_writes_and_an_unknown_one_is_refused(tmp_path):
    store = HistoryStore(tmp_path / "db")
    chat = Chat()
    chat.add_message(None, "user", "Hello there")
    store.save(chat)
    for fmt, spec in EXPORT_FORMATS.items():
        target = tmp_path / f"out{spec.suffix}"
        store.export_to_file(chat.id, target, fmt)
        assert "Hello there" in target.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["messages"]
    assert (tmp_path / "out.md").read_text(encoding="utf-8").startswith("# ")
    assert store.export_to_file(chat.id, tmp_path / "again.md", "markdown") is None   # the word works too
    with pytest.raises(ValueError, match="html"):
        store.export_to_file(chat.id, tmp_path / "out.html", "html")
    assert not (tmp_path / "out.html").exists()
    assert set(ExportFormat) == set(EXPORT_FORMATS)
    store.close()

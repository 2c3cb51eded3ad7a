"""The backend registry (common/backends.py): every kind has one entry, and the UI's backend
code acts on entries, never on a kind it names."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chatgui.common.backends import (BACKEND_TYPES, DEFAULT_KIND, FieldKind, backend_type, saved_kind)
from chatgui.common.records import BackendKind

ROOT = Path(__file__).resolve().parents[1]


def test_every_kind_has_one_entry_with_its_capabilities():
    assert sorted(t.kind.value for t in BACKEND_TYPES) == sorted(k.value for k in BackendKind)
    assert not backend_type(DEFAULT_KIND).is_server and backend_type(DEFAULT_KIND).form == ()
    server = backend_type("openai")
    assert server.is_server and not server.capabilities.token_probabilities
    assert [f.kind for f in server.form] == [FieldKind.URL, FieldKind.SECRET, FieldKind.MODEL]


def test_a_server_kind_is_made_by_its_factory():
    from chatgui.remote import RemoteModel
    made = backend_type(BackendKind.OPENAI).make()(base_url="localhost:9", model="m", api_key=None)
    assert isinstance(made, RemoteModel) and made.base_url == "http://localhost:9/v1"
    assert made.capabilities == backend_type(BackendKind.OPENAI).capabilities
    with pytest.raises(ValueError):
        backend_type(BackendKind.LOCAL).make()


@pytest.mark.parametrize("saved, kind", [({"kind": "openai"}, BackendKind.OPENAI), ({"kind": "local"}, DEFAULT_KIND),
                                         ({"kind": "gemini"}, DEFAULT_KIND), ({}, DEFAULT_KIND), (None, DEFAULT_KIND),
                                         ("openai", DEFAULT_KIND)])
def test_the_saved_kind_falls_back_to_the_default(saved, kind):
    assert saved_kind(saved) is kind


def test_no_code_outside_the_registry_names_a_kind_to_branch_on():
    """`BackendKind.X` may stand where a backend says what it is (records, its own class), not
    in the UI, which must act on the registry's entries."""
    named = re.compile(r"BackendKind\.[A-Z]")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "chatgui" / "ui").rglob("*.py")
                 if named.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_panel_shows_the_form_of_the_chosen_kind(qtbot):
    from chatgui.ui.backends.panel import BackendPanel
    panel = BackendPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert [panel.kind.itemData(i) for i in range(panel.kind.count())] == [t.kind.value for t in BACKEND_TYPES]
    assert [panel.kind.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(panel.kind.count())] == \
        [t.help for t in BACKEND_TYPES]                       # each kind described by its entry
    assert panel.kind.toolTip() == backend_type(DEFAULT_KIND).help
    assert not panel.remote_box.isVisible()
    panel.set_kind(BackendKind.OPENAI)
    assert panel.remote_box.isVisible()
    form = backend_type(BackendKind.OPENAI).form
    assert panel.base_url.placeholderText() == form[0].placeholder
    assert panel.api_key.placeholderText() == form[1].placeholder and panel.api_key.toolTip() == form[1].help
    assert panel._labels[FieldKind.SECRET].text() == form[1].label

"""Knowledge folders while the app runs (issue 32): changes picked up without a restart
(ui/documents/folder_watch.py), and an embedding model chosen on the Knowledge page that the
indexer runs on the folders (ui/documents/embedder.py, engine/embedding.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import chatgui.ui  # noqa: F401  (installs the PySide6 workaround before any widget is made)
from chatgui.ui.documents.controller import DocumentsController
from chatgui.ui.documents.folder_watch import FolderWatch, watch_paths

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_embedding_reference import write_case  # noqa: E402

TIMEOUT_MS = 30_000


def test_a_burst_of_changes_is_one_rescan_of_the_folder_it_was_in(qtbot, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    (a / "sub" / "old.txt").write_text("old")
    (a / ".hidden").mkdir()
    folders = [(1, str(a)), (2, str(b))]
    paths = watch_paths(folders, [str(a / "sub" / "old.txt")])
    assert paths == [str(a), str(a / "sub"), str(b), str(a / "sub" / "old.txt")]   # (no hidden folder)
    watch = FolderWatch(debounce_ms=300, rescan_ms=0)
    watch.watch(folders, paths)
    assert watch.watched() == set(paths)
    seen = []
    watch.changed.connect(seen.append)
    with qtbot.waitSignal(watch.changed, timeout=5000):
        for i in range(20):                       # a copy of many files, into a subfolder
            (a / "sub" / f"new{i}.txt").write_text("new")
    qtbot.wait(600)
    assert seen == [[1]]
    with qtbot.waitSignal(watch.changed, timeout=5000) as changed:
        (a / "sub" / "old.txt").write_text("saved in place")      # the file itself, not its folder
    assert changed.args == [[1]]
    watch.watch(folders[1:], [str(b)])             # a folder removed: no longer watched
    assert watch.watched() == {str(b)}
    watch.stop()
    assert watch.watched() == set()


def test_the_periodic_rescan_covers_every_folder(qtbot, tmp_path):
    watch = FolderWatch(debounce_ms=10, rescan_ms=100)
    watch.watch([(3, str(tmp_path))], [])
    with qtbot.waitSignal(watch.changed, timeout=5000) as changed:
        pass
    assert changed.args == [[3]]
    watch.stop()


@pytest.fixture
def window_maker(make_window, monkeypatch):
    monkeypatch.setattr(DocumentsController, "separate_reader", False)   # no child process per test
    return make_window


def _wait_indexed(qtbot, documents):
    qtbot.waitUntil(lambda: documents.last_summary is not None and not documents.indexing(), timeout=TIMEOUT_MS)


def test_a_file_added_or_changed_while_the_app_runs_is_indexed_without_a_restart(qtbot, window_maker, tmp_path):
    folder = tmp_path / "knowledge"
    (folder / "notes").mkdir(parents=True)
    (folder / "harbour.md").write_text("The harbour wall was built in 1820.\n")
    window = window_maker()   # (model loaded: a close mid-load may outwait the teardown when busy)
    documents = window.documents
    documents.watch._debounce.setInterval(200)
    documents.open_page().add_folder(str(folder))
    _wait_indexed(qtbot, documents)
    qtbot.waitUntil(lambda: str(folder / "notes") in documents.watch.watched(), timeout=TIMEOUT_MS)
    documents.last_summary = None
    (folder / "notes" / "tides.md").write_text("Spring tides at Kelby reach 6.2 metres in March.\n")
    _wait_indexed(qtbot, documents)
    summary = documents.last_summary
    assert (summary.indexed, summary.unchanged) == (1, 1)      # only the new file was read
    hits = documents._open_index().search("spring tides Kelby")
    assert hits and hits[0].path.endswith("tides.md")
    qtbot.waitUntil(lambda: str(folder / "harbour.md") in documents.watch.watched(), timeout=TIMEOUT_MS)
    documents.last_summary = None
    (folder / "harbour.md").write_text("The harbour wall was rebuilt in 1911 after the storm.\n")
    _wait_indexed(qtbot, documents)
    assert documents.last_summary.indexed == 1
    assert documents._open_index().search("rebuilt storm")[0].path.endswith("harbour.md")


def test_an_embedding_model_chosen_on_the_knowledge_page_embeds_the_folders(qtbot, window_maker, tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for i, text in enumerate(["hello the world", "the answer is on page 12", "search query document"]):
        (folder / f"{i}.txt").write_text(text)
    model = write_case(tmp_path, "bert-mean-F32")
    window = window_maker()   # (model loaded: a close mid-load may outwait the teardown when busy)
    documents = window.documents
    page = documents.open_page()
    page.add_folder(str(folder))
    _wait_indexed(qtbot, documents)
    assert documents._open_index().counts()["embeddings"] == 0
    documents.embedding_models = lambda: [("Tiny BERT", str(model))]   # (as an installed catalog model)
    page.refresh()
    assert [page.model_choice.itemText(i) for i in range(page.model_choice.count())][1:] == ["Tiny BERT"]
    documents.last_summary = None
    page.model_choice.setCurrentIndex(1)
    page.model_choice.activated.emit(1)
    assert window.settings.knowledge_model == str(model)
    _wait_indexed(qtbot, documents)
    assert documents.last_summary.embedded == 3 and documents.embedder.loaded
    assert documents._open_index().counts()["embeddings"] == 3
    qtbot.waitUntil(lambda: "3 passages embedded" in page.progress_label.text())   # (the page's slot, queued)
    hits = documents._open_index().search("page 12 answer", embedder=documents.embedder)
    assert hits[0].path.endswith("1.txt")
    page.model_choice.activated.emit(0)               # words only again
    assert window.settings.knowledge_model is None and documents.embedder is None


def test_an_installed_embedding_model_is_offered_for_knowledge_never_as_a_chat_model(qtbot, window_maker, tmp_path):
    from chatgui.common.paths import models_dir
    from chatgui.models.catalog import get_entry
    from chatgui.ui.backends.model_controller import installed_models as chat_models
    from chatgui.ui.settings.panel import installed_models as picker_models
    from tiny_gguf import write_tiny_model

    embedding = models_dir() / get_entry("bge-small-en-v1.5").file
    embedding.write_bytes(write_case(tmp_path, "bert-mean-F32").read_bytes())
    write_tiny_model(models_dir() / "my-chat.gguf")
    assert [Path(p).name for _name, p in picker_models()] == ["my-chat.gguf"]
    assert [m.path.name for m in chat_models()] == ["my-chat.gguf"]
    window = window_maker()   # (model loaded: a close mid-load may outwait the teardown when busy)
    assert window.documents.embedding_models() == [("BGE small EN v1.5 (embeddings)", str(embedding))]

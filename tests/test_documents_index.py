"""Chunking, the knowledge index (FTS5, vectors, fusion) and the background indexer (issue 32)."""
from __future__ import annotations

import os
import sqlite3
import sys
import threading

import numpy as np
import pytest

from chatgui.documents import (Chunk, Embedder, IndexJob, KnowledgeIndex, Passage, chunk_passages,
                               reciprocal_rank_fusion)
from chatgui.documents import indexer as indexer_module
from chatgui.documents import reader as reader_module
from chatgui.documents.query import fts_near_query, fts_query
from fact_corpus import FactCorpus
from pdf_maker import write_encrypted_pdf, write_pdf


# -- chunking ---------------------------------------------------------------------------------

def test_chunks_keep_pages_and_lines():
    passages = [Passage(f"line {i} " + "word " * 20, line=i) for i in range(1, 41)]
    passages += [Passage("first page text", page=1, line=1), Passage("second page text", page=2, line=1)]
    chunks = chunk_passages(passages, target=60, overlap=10)
    text_chunks = [c for c in chunks if c.page is None]
    assert len(text_chunks) > 5
    assert text_chunks[0].line_start == 1 and text_chunks[-1].line_end == 40
    for c in text_chunks:
        # the chunk's text starts on its first line and ends on its last
        assert c.text.startswith(f"line {c.line_start} ") or c.text.startswith("word")
        assert c.line_start <= c.line_end
    # neighbours overlap: each chunk starts before the previous one ended
    for a, b in zip(text_chunks, text_chunks[1:]):
        assert b.line_start <= a.line_end
    paged = [c for c in chunks if c.page is not None]
    assert [(c.page, c.text) for c in paged] == [(1, "first page text"), (2, "second page text")]


def test_chunk_sizes_and_long_runs():
    chunks = chunk_passages([Passage("字" * 3000, line=1)], target=200, overlap=20)
    assert len(chunks) > 10 and all(c.tokens <= 200 + 64 for c in chunks)
    assert chunk_passages([]) == []


def test_chunks_of_a_page_spanning_lines():
    text = "\n".join(f"row{i} alpha beta gamma" for i in range(1, 101))
    chunks = chunk_passages([Passage(text, page=7, line=1)], target=50, overlap=0)
    assert all(c.page == 7 for c in chunks)
    first = chunks[1]
    assert first.text.splitlines()[0].startswith(f"row{first.line_start} ") or first.text.startswith("alpha") \
        or first.text.startswith(("beta", "gamma"))
    assert chunks[-1].line_end == 100


# -- queries and fusion ---------------------------------------------------------------------------

@pytest.mark.parametrize("question", ['AND OR NOT', 'say "hi', 'col:umn', 'NEAR(a b)', 'x\x00y', '* ^ -', '"'])
def test_hostile_questions_never_break_the_query(question):
    index = KnowledgeIndex()
    index.store_file("/a.txt", folder_id=None, kind="text", status="indexed",
                     chunks=[Chunk("AND OR NOT say hi column near x y", None, 1, 1, 5)])
    index.search(question)  # no sqlite3.OperationalError
    assert fts_query("") == "" and index.search("?!") == []


def test_stopwords_dropped_unless_alone():
    assert fts_query("What is the capital of France?") == '"capital" OR "france"'
    assert fts_query("the") == '"the"'
    assert fts_near_query("launch code of Belmora") == \
        'NEAR("launch" "code", 4) OR NEAR("code" "belmora", 4) OR NEAR("launch" "belmora", 4)'


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_interleaving_keeps_each_rankings_best():
    from chatgui.documents.ranking import interleave

    # RRF would put "c" (third and first) and "a" before "x", the first ranking's clear first
    words, vectors = ["x", "a", "b", "c"], ["c", "a", "d"]
    assert [item for item, _ in interleave([words, vectors])] == ["x", "c", "a", "b", "d"]
    assert [item for item, _ in reciprocal_rank_fusion([words, vectors])][:2] == ["a", "c"]
    scores = [score for _, score in interleave([words, vectors])]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    assert interleave([[], []]) == [] and [i for i, _ in interleave([["a"], []])] == ["a"]


# -- the index ------------------------------------------------------------------------------------

def _chunks(*texts):
    return [Chunk(t, None, i + 1, i + 1, 5) for i, t in enumerate(texts)]


def test_store_file_replaces_and_never_duplicates(tmp_path):
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.store_file("/doc.txt", folder_id=None, kind="text", status="indexed", chunks=_chunks("apple pie", "pear"))
    index.store_file("/doc.txt", folder_id=None, kind="text", status="indexed", chunks=_chunks("banana bread"))
    assert index.counts()["chunks"] == 1
    assert index.search("apple") == []  # the old chunk left the FTS table too
    assert [h.text for h in index.search("banana")] == ["banana bread"]
    fts_rows = index._conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    assert fts_rows == 1
    index._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path):
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.store_file("/doc.txt", folder_id=None, kind="text", status="indexed", chunks=_chunks("old text"))
    with pytest.raises(ValueError):  # vectors with the wrong shape fail halfway through the write
        index.store_file("/doc.txt", folder_id=None, kind="text", status="indexed",
                         chunks=_chunks("new text", "more"), vectors=np.zeros((1, 4)), model="m")
    assert [h.text for h in index.search("old")] == ["old text"] and index.counts()["chunks"] == 1


def test_ranking_puts_the_stated_fact_first(tmp_path):
    """Every fact's entity and attribute also appear on other pages: the chunk that states the
    fact must still come in the top 3, through the index's own search."""
    pages, facts = FactCorpus(seed=3).pages(40, n_facts=8, lines_per_page=60)
    pdf = write_pdf(tmp_path / "facts.pdf", pages)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(tmp_path)
    IndexJob(index.path, separate_reader=False).run()
    assert index.counts()["chunks"] > 80
    for fact in facts:
        hits = index.search(fact.question, limit=3)
        assert any(h.page == fact.page and fact.value in h.text and h.path == str(pdf) for h in hits), fact


def test_folder_filter(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x.txt").write_text("zebra crossing in folder a")
    (b / "y.txt").write_text("zebra stripes in folder b")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    fa, fb = index.add_folder(a), index.add_folder(b)
    IndexJob(index.path, separate_reader=False).run()
    assert len(index.search("zebra")) == 2
    assert [h.path for h in index.search("zebra", folder_ids=[fb.id])] == [str(b / "y.txt")]
    assert index.search("zebra", folder_ids=[]) == []
    with pytest.raises(ValueError, match="already part of"):
        index.add_folder(a / "sub")
    index.remove_folder(fa.id)
    assert [h.path for h in index.search("zebra")] == [str(b / "y.txt")]


class WordEmbedder:
    """A test double for the Embedder Protocol: one dimension per concept, with synonyms mapped
    to the same dimension (what an embedding model does and BM25 cannot)."""
    name = "test-concepts"
    dim = 4
    CONCEPTS = {"car": 0, "automobile": 0, "vehicle": 0, "dog": 1, "puppy": 1, "money": 2, "cash": 2, "tea": 3}

    def _one(self, text):
        v = np.zeros(self.dim, dtype=np.float32)
        for w in text.lower().replace("?", " ").replace(".", " ").split():
            if w in self.CONCEPTS:
                v[self.CONCEPTS[w]] += 1
        return v

    def embed_documents(self, texts):
        return np.stack([self._one(t) for t in texts])

    def embed_query(self, text):
        return self._one(text)


def test_hybrid_finds_what_words_alone_miss(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The automobile was parked outside.")
    (folder / "b.txt").write_text("The station clerk sold tickets.")
    (folder / "c.txt").write_text("A puppy played in the garden with some tea.")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    embedder = WordEmbedder()
    assert isinstance(embedder, Embedder)
    IndexJob(index.path, embedder=embedder, separate_reader=False).run()
    assert index.counts()["embeddings"] == 3
    question = "vehicle at the station"
    assert [h.path[-5:] for h in index.search(question)] == ["b.txt"]  # words: "station" only
    vector = index.search_vectors(embedder.embed_query(question), embedder.name)
    # only rows that share a concept with the question: cosine 0 is no match
    assert [h.path[-5:] for h in vector] == ["a.txt"] and vector[0].score == pytest.approx(1.0)
    hybrid = index.search(question, embedder=embedder)
    assert [h.path[-5:] for h in hybrid] == ["b.txt", "a.txt"]      # interleaved: the words' first first
    assert sorted(h.path[-5:] for h in index.search(question, embedder=embedder, fusion="rrf")) == ["a.txt", "b.txt"]
    # a model whose vectors the index does not hold: words only, no error
    other = WordEmbedder()
    other.name = "another-model"
    assert [h.path[-5:] for h in index.search(question, embedder=other)] == ["b.txt"]


def test_files_indexed_before_a_model_was_chosen_get_its_vectors(tmp_path):
    """Choosing an embedding model later: the next run embeds the chunks already there (only
    theirs: no file is read again), a batch at a time; another model's vectors are replaced."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"The automobile number {i} was parked. " * 3)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    IndexJob(index.path, separate_reader=False).run()
    assert index.counts() | {"embeddings": 0} == index.counts()
    embedder = WordEmbedder()
    progress = []
    summary = IndexJob(index.path, embedder=embedder, separate_reader=False, on_progress=progress.append).run()
    assert summary.unchanged == 3 and summary.indexed == 0
    assert summary.embedded == index.counts()["chunks"] == index.counts()["embeddings"]
    assert progress[-1].outcome == "embedding" and progress[-1].done == progress[-1].total == summary.embedded
    assert index.chunks_without_vectors(embedder.name) == []
    assert IndexJob(index.path, embedder=embedder, separate_reader=False).run().embedded == 0   # nothing left
    other = WordEmbedder()
    other.name = "another-model"
    assert len(index.chunks_without_vectors(other.name)) == index.counts()["chunks"]
    IndexJob(index.path, embedder=other, separate_reader=False).run()
    assert index.counts()["embeddings"] == index.counts()["chunks"]      # replaced, not added
    assert index.chunks_without_vectors(embedder.name) != []


def test_a_failing_embedding_model_leaves_the_files_indexed_by_their_words(tmp_path):
    class Broken(WordEmbedder):
        name = "broken"
        calls = 0

        def embed_documents(self, texts):
            Broken.calls += 1
            raise RuntimeError("the model file is damaged")

        def embed_query(self, text):
            raise RuntimeError("the model file is damaged")

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"zebra number {i}")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    summary = IndexJob(index.path, embedder=Broken(), separate_reader=False).run()
    assert summary.indexed == 3 and summary.embedding_error == "the model file is damaged"
    assert Broken.calls == 1                       # tried once, not once per file
    assert index.counts()["embeddings"] == 0
    assert len(index.search("zebra", embedder=Broken())) == 3
    # a question whose embedding fails (vectors of that model exist) falls back to the words
    index.store_vectors([cid for cid, _ in index.chunks_without_vectors("broken")], np.ones((3, 4)), "broken")
    assert len(index.search("zebra", embedder=Broken())) == 3


def test_cancel_stops_between_embedding_batches(tmp_path, monkeypatch):
    from chatgui.documents import indexer

    monkeypatch.setattr(indexer, "EMBED_BATCH", 2)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.txt").write_text(f"car {i}")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    IndexJob(index.path, separate_reader=False).run()
    job = None

    class Slow(WordEmbedder):
        batches = 0

        def embed_documents(self, texts):
            Slow.batches += 1
            if Slow.batches == 2:
                job.cancel()
            return super().embed_documents(texts)

    job = IndexJob(index.path, embedder=Slow(), separate_reader=False)
    assert job.run().cancelled
    assert index.counts()["embeddings"] == 4        # two whole batches kept, the rest left for the next run
    assert IndexJob(index.path, embedder=Slow(), separate_reader=False).run().embedded == 2


def test_a_big_file_is_searchable_by_its_words_before_it_is_embedded_and_keeps_its_batches(tmp_path, monkeypatch):
    """One long file indexed with an embedder, cancelled after two batches of its chunks: its
    words are indexed whole, the two batches' vectors kept; the rerun does not read the file
    again and embeds only the rest."""
    from chatgui.documents import indexer

    monkeypatch.setattr(indexer, "EMBED_BATCH", 2)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text("\n\n".join(f"The car number {i} " + "word " * 190 for i in range(6)))
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    job = None

    class Cancelling(WordEmbedder):
        batches = 0

        def embed_documents(self, texts):
            Cancelling.batches += 1
            if Cancelling.batches == 2:
                assert index.search("number 5")          # the words are searchable meanwhile
                job.cancel()
            return super().embed_documents(texts)

    job = IndexJob(index.path, embedder=Cancelling(), separate_reader=False)
    assert job.run().cancelled
    chunks = index.counts()["chunks"]
    assert chunks >= 6 and index.counts()["embeddings"] == 4
    again = IndexJob(index.path, embedder=Cancelling(), separate_reader=False).run()
    assert again.unchanged == 1 and again.indexed == 0 and again.embedded == chunks - 4
    assert index.counts()["embeddings"] == chunks


def test_hybrid_search_with_an_embedding_model_run_by_the_engine(tmp_path):
    """The engine's EmbeddingModel (a tiny random BERT) as the indexer's and the search's
    embedder: every chunk gets a vector and a chunk's own text finds it first."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "data"))
    from make_embedding_reference import write_case
    from chatgui.engine.embedding import load_embedding_model

    model = load_embedding_model(write_case(tmp_path, "bert-mean-F32"))
    folder = tmp_path / "docs"
    folder.mkdir()
    texts = ["hello the world", "search query document", "the answer is on page 12", "model embedding ding"]
    for i, text in enumerate(texts):
        (folder / f"{i}.txt").write_text(text)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(folder)
    summary = IndexJob(index.path, embedder=model, separate_reader=False).run()
    assert summary.embedded == 4 and summary.embedding_error is None and index.counts()["embeddings"] == 4
    for i, text in enumerate(texts):
        hits = index.search_vectors(model.embed_query(text), model.name, limit=1)
        assert hits[0].path.endswith(f"{i}.txt") and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert index.search("answer page", embedder=model)[0].path.endswith("2.txt")


def test_damaged_index_is_set_aside_and_rebuilt(tmp_path):
    path = tmp_path / "knowledge.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    index = KnowledgeIndex(path)
    assert index.counts()["chunks"] == 0
    assert any(p.name.startswith("knowledge.sqlite3.corrupt-") for p in tmp_path.iterdir())


# -- the indexer ---------------------------------------------------------------------------------

def make_folder(root, n=6):
    root.mkdir(exist_ok=True)
    for i in range(n):
        (root / f"note{i}.md").write_text(f"# Note {i}\n\nThe keyword{i} appears here with filler text.\n")
    return root


def test_status_per_file_with_reasons(tmp_path):
    docs = make_folder(tmp_path / "docs", 2)
    write_pdf(docs / "good.pdf", [["A readable page."]])
    write_encrypted_pdf(docs / "locked.pdf", [["hidden"]])
    (docs / "broken.pdf").write_bytes(b"not a pdf")
    (docs / "empty.txt").touch()
    (docs / "binary.txt").write_bytes(bytes(range(256)))
    (docs / "photo.png").write_bytes(b"\x89PNG")  # not a document: not listed
    with open(docs / "huge.txt", "wb") as f:
        f.truncate(2 * 1024 ** 3)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    folder = index.add_folder(docs)
    events = []
    summary = IndexJob(index.path, on_progress=events.append).run()
    statuses = {os.path.basename(s.path): s for s in index.file_statuses(folder.id)}
    assert set(statuses) == {"note0.md", "note1.md", "good.pdf", "locked.pdf", "broken.pdf", "empty.txt",
                             "binary.txt", "huge.txt"}
    assert statuses["good.pdf"].status == "indexed" and statuses["good.pdf"].pages == 1
    assert statuses["locked.pdf"].reason == "this PDF is protected by a password"
    assert statuses["broken.pdf"].reason.startswith("this PDF is damaged or not a PDF")
    assert statuses["empty.txt"].reason == "the file is empty"
    assert "binary" in statuses["binary.txt"].reason
    assert statuses["huge.txt"].reason.startswith("too large to read (2.0 GB")
    assert (summary.indexed, summary.failed) == (3, 5)
    assert events[-1].done == events[-1].total == 8


def test_only_changed_files_are_read_again(tmp_path, monkeypatch):
    docs = make_folder(tmp_path / "docs", 4)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(docs)
    reads = []
    real_extract = reader_module.extract
    monkeypatch.setattr(reader_module, "extract", lambda path, *a, **k: reads.append(os.path.basename(path))
                        or real_extract(path, *a, **k))
    assert IndexJob(index.path, separate_reader=False).run().indexed == 4 and len(reads) == 4
    reads.clear()
    assert IndexJob(index.path, separate_reader=False).run().unchanged == 4 and reads == []
    os.utime(docs / "note1.md", ns=(1, 1))  # new times, same bytes: hashed, not read
    (docs / "note2.md").write_text("# Note 2\n\nNew words: pineapple.\n")
    (docs / "note3.md").unlink()
    summary = IndexJob(index.path, separate_reader=False).run()
    assert reads == ["note2.md"]
    assert (summary.indexed, summary.unchanged, summary.removed) == (1, 2, 1)
    assert [h.path for h in index.search("pineapple")] == [str(docs / "note2.md")]
    assert index.search("keyword3") == []


def test_pause_resume_and_cancel(tmp_path, monkeypatch):
    docs = make_folder(tmp_path / "docs", 8)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(docs)
    gate = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p.path)
        if len(seen) == 2:
            job.pause()
            gate.set()

    job = IndexJob(index.path, on_progress=on_progress, separate_reader=False)
    job.start()
    assert gate.wait(10)
    assert not job.wait(0.5) and job.paused and len(seen) == 2  # paused: nothing moves
    job.resume()
    assert job.wait(10) and job.summary.indexed == 8
    # cancel while paused: the job ends without touching more files
    (docs / "note0.md").write_text("changed")
    (docs / "note1.md").write_text("changed too")
    job = IndexJob(index.path, separate_reader=False)
    job.pause()
    job.start()
    job.cancel()
    assert job.wait(10) and job.summary.cancelled and job.summary.indexed == 0


def test_symlink_loops_and_unreadable_folders(tmp_path, monkeypatch):
    docs = make_folder(tmp_path / "docs", 1)
    (docs / "sub").mkdir()
    (docs / "sub" / "inner.txt").write_text("inner text")
    (docs / "sub" / "back").symlink_to(docs)  # a loop through a folder link
    (docs / "self.txt").symlink_to(docs / "self.txt")  # a file link to itself
    (docs / "private").mkdir()
    (docs / "private" / "hidden.txt").write_text("cannot be listed")
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(docs / "private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    folder = index.add_folder(docs)
    summary = IndexJob(index.path, separate_reader=False).run()
    statuses = {os.path.relpath(s.path, docs): s for s in index.file_statuses(folder.id)}
    assert statuses["note0.md"].status == statuses[os.path.join("sub", "inner.txt")].status == "indexed"
    assert statuses["self.txt"].reason == "a link that leads back to itself (a symlink loop)"
    assert statuses[os.path.join("sub", "back")].reason == "a link to a folder that is already indexed (skipped)"
    assert statuses["private"].reason == "folder not indexed: chatgui is not allowed to read it (permission denied)"
    assert (summary.indexed, summary.failed) == (2, 3)


def test_files_of_a_folder_that_turned_unreadable_are_kept(tmp_path, monkeypatch):
    docs = make_folder(tmp_path / "docs", 1)
    (docs / "share").mkdir()
    (docs / "share" / "remote.md").write_text("offline words")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(docs)
    IndexJob(index.path, separate_reader=False).run()
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(docs / "share"):
            raise OSError(5, "Input/output error", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = IndexJob(index.path, separate_reader=False).run()
    assert summary.removed == 0 and summary.failed == 1
    assert [h.path for h in index.search("offline")] == [str(docs / "share" / "remote.md")]
    monkeypatch.setattr(os, "scandir", real_scandir)
    (docs / "share" / "remote.md").unlink()
    assert IndexJob(index.path, separate_reader=False).run().removed == 2  # the file, and the folder's problem
    assert index.search("offline") == []


def test_a_removed_knowledge_folder_is_reported(tmp_path):
    docs = make_folder(tmp_path / "docs", 1)
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    folder = index.add_folder(docs)
    (docs / "note0.md").unlink()
    docs.rmdir()
    IndexJob(index.path, separate_reader=False).run()
    assert [(s.status, s.reason) for s in index.file_statuses(folder.id)] == [
        ("failed", "it no longer exists (or a link points nowhere)")]


# -- restart after kill -9 --------------------------------------------------------------------------

KILL_MID_TRANSACTION = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[3])
from chatgui.documents import IndexJob
from chatgui.documents import index as index_module

commits = 0
real_exit = index_module._Transaction.__exit__

def exit_or_die(self, exc_type, exc, tb):
    global commits
    if exc_type is None:
        commits += 1
        if commits == int(sys.argv[2]):
            # this file's rows and chunks are written but not committed: die like kill -9
            os.kill(os.getpid(), signal.SIGKILL)
    return real_exit(self, exc_type, exc, tb)

index_module._Transaction.__exit__ = exit_or_die
IndexJob(sys.argv[1]).run()
"""


def _integrity(index: KnowledgeIndex):
    conn = index._conn
    per_file = conn.execute("SELECT sum(chunks) FROM files").fetchone()[0] or 0
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    distinct = conn.execute("SELECT count(*) FROM (SELECT DISTINCT file_id, ord FROM chunks)").fetchone()[0]
    conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert per_file == chunks == distinct  # no duplicate, no orphan
    return chunks


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_restart_after_kill_mid_file_keeps_progress_and_adds_no_duplicates(tmp_path):
    import subprocess

    docs = make_folder(tmp_path / "docs", 12)
    db = tmp_path / "k.sqlite3"
    KnowledgeIndex(db).add_folder(docs)
    root = os.path.dirname(os.path.dirname(os.path.abspath(indexer_module.__file__)))
    proc = subprocess.run([sys.executable, "-c", KILL_MID_TRANSACTION, str(db), "6", os.path.dirname(root)],
                          capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    index = KnowledgeIndex(db)
    assert index.counts()["indexed"] == 5  # the five committed files survived; the sixth left nothing
    assert _integrity(index) == 5
    outcomes = []
    summary = IndexJob(db, on_progress=lambda p: outcomes.append((os.path.basename(p.path), p.outcome)),
                       separate_reader=False).run()
    assert (summary.unchanged, summary.indexed) == (5, 7)  # progress kept: the five are not read again
    assert _integrity(index) == 12
    fresh = tmp_path / "fresh.sqlite3"
    KnowledgeIndex(fresh).add_folder(docs)
    IndexJob(fresh, separate_reader=False).run()
    texts = lambda db_path: sorted(r[0] for r in sqlite3.connect(db_path).execute("SELECT text FROM chunks"))  # noqa: E731
    assert texts(db) == texts(fresh)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_restart_after_kill_at_any_moment(tmp_path):
    """The parent kills the indexing process once it has written a few files, wherever it is."""
    import signal
    import subprocess

    docs = tmp_path / "docs"
    docs.mkdir()
    corpus = FactCorpus(seed=9)
    for i in range(30):
        pages, _ = corpus.pages(3, lines_per_page=40)
        (docs / f"doc{i:02d}.txt").write_text("\n".join("\n".join(p) for p in pages))
    db = tmp_path / "k.sqlite3"
    KnowledgeIndex(db).add_folder(docs)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(indexer_module.__file__))))
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from chatgui.documents import IndexJob;"
            "IndexJob(sys.argv[1], on_progress=lambda p: print(p.outcome, flush=True)).run()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), root], stdout=subprocess.PIPE)
    for _ in range(4):
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    index = KnowledgeIndex(db)
    kept = index.counts()["indexed"]
    assert 4 <= kept < 30
    _integrity(index)
    summary = IndexJob(db, separate_reader=False).run()
    assert summary.unchanged == kept and summary.indexed == 30 - kept
    _integrity(index)


def test_chinese_text_is_searchable(tmp_path):
    """Chinese has no spaces: without splitting, a whole sentence would be one FTS token."""
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.store_file("/zh.txt", folder_id=None, kind="text", status="indexed", chunks=_chunks(
        "北京是中国的首都，人口约两千万。", "上海是一个港口城市。", "京都是日本的古都。"))
    hits = index.search("中国的首都是哪里？", limit=3)
    assert hits[0].text == "北京是中国的首都，人口约两千万。"  # the stored text is the original
    assert index.search("港口城市")[0].text == "上海是一个港口城市。"
    # characters next to each other rank first: 首都 (capital) vs 古都 / 京都 sharing one character
    assert [h.text[:2] for h in index.search("首都")][:1] == ["北京"]
    index._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
    index.store_file("/zh.txt", folder_id=None, kind="text", status="indexed", chunks=_chunks("新的内容"))
    assert index.search("首都") == [] and index.counts()["chunks"] == 1
    index._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")


def test_an_index_from_a_newer_chatgui_is_left_alone(tmp_path):
    from chatgui.documents import IndexUnusable

    path = tmp_path / "k.sqlite3"
    KnowledgeIndex(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(IndexUnusable, match="newer chatgui"):
        KnowledgeIndex(path)
    assert not [p for p in tmp_path.iterdir() if ".corrupt" in p.name]


# -- the reader process ---------------------------------------------------------------------------

def crash_or_hang(conn, chunk_tokens, overlap_tokens):
    """A child loop for ReaderProcess that dies on 'crash' files and hangs on 'slow' ones."""
    import time as time_module

    from chatgui.documents.reader import read_and_chunk

    while True:
        request = conn.recv()
        if request is None:
            return
        path, kind, _whole = request
        if "crash" in path:
            os._exit(3)
        if "slow" in path:
            time_module.sleep(60)
        conn.send(read_and_chunk(path, kind, chunk_tokens, overlap_tokens))


def test_reader_process_survives_crashes_hangs_and_cancel(tmp_path):
    from chatgui.documents.reader import ReaderProcess

    good = tmp_path / "good.md"
    good.write_text("# Title\n\nSome text to read.\n")
    reader = ReaderProcess(200, 40, time_limit_s=2, serve=crash_or_hang)
    try:
        assert [c.text for c in reader.read(str(good), "markdown").chunks] == ["# Title\nSome text to read."]
        crashed = reader.read(str(tmp_path / "crash.md"), "markdown")
        assert crashed.error.startswith("reading it stopped chatgui's reader (exit code 3)")
        assert reader.read(str(good), "markdown").error is None  # a new child took over
        assert reader.read(str(tmp_path / "slow.md"), "markdown").error == "reading it took longer than 2 s"
        assert reader.extract(str(tmp_path / "crash.md")).error.startswith("reading it stopped chatgui's reader")
        flag = threading.Event()
        threading.Timer(0.3, flag.set).start()
        assert reader.read(str(tmp_path / "slow.md"), "markdown", flag.is_set) is None  # cancelled: child stopped
        assert reader._process is None
    finally:
        reader.close()


def test_indexer_reads_in_a_child_process_by_default(tmp_path):
    docs = make_folder(tmp_path / "docs", 2)
    write_pdf(docs / "a.pdf", [["pdf words here"]])
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(docs)
    job = IndexJob(index.path)
    assert job._reader is not None
    assert job.run().indexed == 3 and job._reader._process is None  # closed at the end
    assert index.search("pdf words")[0].page == 1


def test_a_job_that_cannot_open_its_index_says_why(tmp_path):
    finished = []
    job = IndexJob(tmp_path / "missing-folder" / "k.sqlite3", separate_reader=False, on_finished=finished.append)
    job.run()
    assert job.error.startswith("indexing stopped: the knowledge index") and "cannot be opened" in job.error
    assert finished == [job.summary] and job.finished

"""Knowledge folders with an embedding model run by the engine (issue 32): indexing speed with
embeddings, and exact vector search at 10,000 and 100,000 chunks.

    python benchmarks/bench_embeddings.py [--pages 40] [--sample 24] [--folder DIR] [--skip-qwen]

No real embedding GGUF can be fetched here (the model hubs are out of reach), so the models are
random-weight ones of the real models' shapes (written once into the work folder, Q8_0 as the
catalog's files): the speeds are real, the retrieval quality is not measurable with them (recall
with a real model: not measured). Shapes:
- bge-small-en-v1.5: bert, 12 layers, 384 wide, 12 heads, MLP 1,536, vocabulary 30,522;
- nomic-embed-text-v1.5: nomic-bert, 12 layers, 768 wide, 12 heads, SwiGLU MLP 3,072;
- Qwen3-Embedding-0.6B: qwen3, 28 layers, 1,024 wide, 16 query / 8 KV heads of 128, MLP 3,072
  (last-token pooling, no output head; its vocabulary is the tiny test one: the embedding table's
  size changes memory, not compute).

Prints one JSON object:
- index_with_embeddings: a folder of PDFs (--pages pages of generated text, tests/pdf_maker.py)
  indexed from scratch by IndexJob (files read in its child process, as the app does) with the
  bge-small-shaped model embedding every chunk on the indexer's thread: pages/s and chunks/s,
  against the same folder indexed without an embedder (BM25 only); main_thread_gap_ms: how late
  5 ms ticks of the main thread were meanwhile (an event loop's wake-ups: p50 / p99 / max);
- embed_chunks_per_s / pages_per_s per model: the chunks of that folder embedded (--sample of
  them, batched as the indexer does), their token counts those of a real tokenizer (the
  chunker's estimate, documents.tokens: the tiny test vocabularies would split text into
  characters and time 4x the tokens); pages/s = chunks/s / the folder's chunks per page;
- wordpiece_chunks_per_s: the WordPiece tokenizer alone (pure Python) on the same chunks with a
  vocabulary of the corpus's words;
- vector_search_ms: exact numpy cosine search (documents/vectors.py top_k_cosine) over 10,000
  and 100,000 rows of 384, 768 and 1,024 dimensions, p50 over 20 queries; vector_load_ms: the
  index reading 10,000 x 1,024 and 100,000 x 384 stored vectors back into its search matrix
  (done once after each change of the index).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench_documents import index_with_gaps  # noqa: E402  (the job on its thread, the event-loop gaps)
from chatgui.documents import Chunk, IndexJob, KnowledgeIndex, approx_tokens  # noqa: E402
from chatgui.documents.vectors import normalized, top_k_cosine  # noqa: E402
from chatgui.engine.embedding import load_embedding_model  # noqa: E402
from fact_corpus import FactCorpus  # noqa: E402
from pdf_maker import write_pdf  # noqa: E402
from tiny_encoder_gguf import write_tiny_encoder  # noqa: E402
from tiny_gguf import write_tiny_model  # noqa: E402

LINES_PER_PAGE = 90      # as bench_documents.py: about 3,500 characters a page


def shaped_models(folder: Path, words: tuple[str, ...], qwen: bool) -> dict[str, Path]:
    """Random-weight Q8_0 models of the real models' shapes (written once, then reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    specs = {"bge-small-en-v1.5": dict(arch="bert", dim=384, n_layers=12, n_heads=12, hidden=1536, context=512),
             "nomic-embed-text-v1.5": dict(arch="nomic-bert", dim=768, n_layers=12, n_heads=12, hidden=3072,
                                           context=2048)}
    for name, spec in specs.items():
        path = folder / f"{name}-random-Q8_0.gguf"
        if not path.exists():
            write_tiny_encoder(path, qtype="Q8_0", words=words, vocab_size=30522, **spec)
        out[name] = path
    if qwen:
        path = folder / "Qwen3-Embedding-0.6B-random-Q8_0.gguf"
        if not path.exists():
            write_tiny_model(path, arch="qwen3", qtype="Q8_0", dim=1024, n_layers=28, n_heads=16, n_kv_heads=8,
                             hidden=3072, context=32768, tied=True, chat_template=None,
                             metadata={"pooling_type": 3, "attention.key_length": 128, "attention.value_length": 128,
                                       "rope.dimension_count": 128},
                             edit=lambda w: w.add_add_eos_token(True))
        out["Qwen3-Embedding-0.6B"] = path
    return out


def realistic_lengths(model) -> None:
    """Token ids as many as a real tokenizer would give (the chunker's estimate), random ones:
    the model's compute at real lengths (see the module's docstring)."""
    rng = np.random.default_rng(0)
    specials = model.tokenize("")          # ([CLS] [SEP], or the EOS)
    vocab = 30000 if model.pooling != "last" else 250

    def encode(text: str) -> list[int]:
        n = approx_tokens(text)
        body = rng.integers(5, vocab, n).tolist()
        return specials[:1] + body + specials[1:] if len(specials) == 2 else body + specials
    model._encode = encode


def fresh_index(path: Path, folder: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with KnowledgeIndex(path) as index:
        index.add_folder(folder)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=40, help="pages of the indexing test (4 PDFs)")
    ap.add_argument("--sample", type=int, default=24, help="chunks embedded per model for chunks/s")
    ap.add_argument("--folder", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--skip-qwen", action="store_true", help="leave out the 0.6B model (writing it takes a minute)")
    args = ap.parse_args()
    work = args.folder or Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    docs = work / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True)
    result: dict = {"machine_cores": os.cpu_count(), "load_avg_start": round(os.getloadavg()[0], 2),
                    "models": "random weights of the real shapes, Q8_0 (no real embedding GGUF reachable here)",
                    "recall_at_3_with_a_real_model": "not measured (no real embedding model available)"}
    corpus = FactCorpus(seed=11)
    per_file = max(1, args.pages // 4)
    text_words: set[str] = set()
    for i in range(4):
        pages, _ = corpus.pages(per_file, lines_per_page=LINES_PER_PAGE)
        write_pdf(docs / f"volume-{i}.pdf", pages)
        text_words |= {w for p in pages for line in p for w in re.findall(r"[a-z]+", line.lower())}
    models = shaped_models(work / "models", tuple(sorted(text_words)), qwen=not args.skip_qwen)

    # 1. the folder indexed without and with the bge-small-shaped model (the app's path)
    start = time.perf_counter()
    plain = IndexJob(fresh_index(work / "plain.sqlite3", docs)).run()
    bm25_s = time.perf_counter() - start
    bge = load_embedding_model(models["bge-small-en-v1.5"])
    realistic_lengths(bge)
    # on the indexer's thread, as in the app, while this thread ticks every 5 ms as an event loop would
    hybrid_s, gaps, summary = index_with_gaps(fresh_index(work / "hybrid.sqlite3", docs), embedder=bge)
    with KnowledgeIndex(work / "hybrid.sqlite3") as index:
        counts = index.counts()
        chunks = [text for _, text in index.chunks_without_vectors("none")]
    pages = per_file * 4
    assert summary.indexed == 4 and counts["embeddings"] == counts["chunks"], (summary, counts)
    result["index_with_embeddings"] = {
        "model": "bge-small-en-v1.5 shape", "pages": pages, "chunks": counts["chunks"],
        "chunks_per_page": round(counts["chunks"] / pages, 2),
        "bm25_only_s": round(bm25_s, 2), "bm25_only_pages_per_s": round(pages / bm25_s, 1),
        "with_embeddings_s": round(hybrid_s, 2), "with_embeddings_pages_per_s": round(pages / hybrid_s, 2),
        "with_embeddings_chunks_per_s": round(counts["chunks"] / hybrid_s, 1),
        "main_thread_gap_ms": gaps,
        "plain_summary": vars(plain)}

    # 2. chunks/s and pages/s per model on a sample of those chunks
    chunks_per_page = counts["chunks"] / pages
    sample = chunks[:args.sample]
    result["embed"] = {}
    for name, path in models.items():
        start = time.perf_counter()
        model = load_embedding_model(path)
        load_s = time.perf_counter() - start
        realistic_lengths(model)
        model.embed_documents(sample[:2])                  # (first-call costs out of the timing)
        start = time.perf_counter()
        for i in range(0, len(sample), 32):
            model.embed_documents(sample[i:i + 32])
        seconds = time.perf_counter() - start
        per_s = len(sample) / seconds
        result["embed"][name] = {"load_s": round(load_s, 2), "chunks": len(sample),
                                 "tokens_per_chunk": round(statistics.mean(approx_tokens(c) for c in sample), 1),
                                 "chunks_per_s": round(per_s, 2), "pages_per_s": round(per_s / chunks_per_page, 3),
                                 "seconds_per_1000_pages": round(1000 * chunks_per_page / per_s)}
        print(name, result["embed"][name], file=sys.stderr, flush=True)

    # 3. the WordPiece tokenizer alone, with a vocabulary of the corpus's words
    tokenizer = load_embedding_model(models["bge-small-en-v1.5"])
    start = time.perf_counter()
    for chunk in chunks:
        tokenizer.tokenize(chunk)
    result["wordpiece_chunks_per_s"] = round(len(chunks) / (time.perf_counter() - start), 1)

    # 4. exact vector search, and reading stored vectors back
    rng = np.random.default_rng(0)
    result["vector_search_ms"] = {}
    for rows in (10_000, 100_000):
        for dim in (384, 768, 1024):
            matrix = normalized(rng.standard_normal((rows, dim), dtype=np.float32))
            times = []
            for _ in range(20):
                query = rng.standard_normal(dim, dtype=np.float32)
                start = time.perf_counter()
                top_k_cosine(matrix, query, 50)
                times.append((time.perf_counter() - start) * 1000)
            result["vector_search_ms"][f"{rows}x{dim}"] = round(statistics.median(times), 2)
    result["vector_load_ms"] = {}
    for rows, dim in ((10_000, 1024), (100_000, 384)):
        with KnowledgeIndex(work / f"load-{rows}.sqlite3") as index:
            many = [Chunk(f"chunk {i}", None, i, i, 2) for i in range(rows)]
            index.store_file(f"/load/{rows}.txt", folder_id=None, kind="text", status="indexed", chunks=many,
                             vectors=rng.standard_normal((rows, dim), dtype=np.float32), model="load-test")
            start = time.perf_counter()
            index._vectors("load-test")
            result["vector_load_ms"][f"{rows}x{dim}"] = round((time.perf_counter() - start) * 1000, 1)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}/load-{rows}.sqlite3{suffix}").unlink(missing_ok=True)
    result["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

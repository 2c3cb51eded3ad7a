"""Recall@3 of the knowledge search with a real embedding model run by the engine: hybrid (BM25
fused with vectors by reciprocal rank fusion) against BM25 alone (issue 32).

    python benchmarks/bench_hybrid_recall.py MODEL.gguf [--pages 500] [--facts 24] [--folder DIR]

MODEL.gguf: an embedding GGUF (benchmarks/bert_to_gguf.py makes one of all-MiniLM-L6-v2, the
real embedding model a package registry has: see there). The data is bench_documents.py's: a
500-page PDF (tests/pdf_maker.py) of generated text (tests/fact_corpus.py) in which each fact
is stated once, one on page 400, among pages that name the same entities and attributes with
other partners. Two question sets:
- the fact questions as written ("What is the launch code of Belmora?"): the page shares their
  words, which BM25 is made for;
- the same asked in other words (PARAPHRASES: "Which ignition sequence starts Belmora?"): only
  the entity's made-up name is shared, and it stands on many pages.
Prints one JSON object: indexing time with the model (pages/s, chunks/s), and recall@3 per
question set (and recall@8: the app asks for 8 passages, then keeps what its token budget
allows) for lexical (KnowledgeIndex.search without vectors, as the app without a model),
vectors alone (search_vectors), hybrid (search with the model: the two rankings interleaved, as
the app does) and hybrid_rrf (the same fused by reciprocal rank fusion), with the questions missed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from chatgui.documents import IndexJob, KnowledgeIndex  # noqa: E402
from chatgui.engine.embedding import load_embedding_model  # noqa: E402
from fact_corpus import FactCorpus  # noqa: E402
from pdf_maker import write_pdf  # noqa: E402

LINES_PER_PAGE = 90
# Each attribute (tests/fact_corpus.py ATTRIBUTES) asked for in other words
PARAPHRASES = {
    "launch code": "Which ignition sequence starts {e}?", "head engineer": "Who is the chief technician at {e}?",
    "storage capacity": "How much can be stored at {e}?", "founding year": "When was {e} established?",
    "harbour depth": "How deep is the port at {e}?", "signal frequency": "On which wavelength does {e} broadcast?",
    "reactor temperature": "How hot does the core of {e} run?",
    "archive location": "Where are the records of {e} kept?",
    "patrol route": "Which path do the guards of {e} walk?", "mineral yield": "How much ore is mined at {e}?",
    "orbital period": "How long does one revolution of {e} take?", "ferry schedule": "When do the boats to {e} sail?",
    "vault password": "Which secret word opens the strongroom of {e}?",
    "crop rotation": "In which cycle are the fields of {e} planted?",
    "bridge clearance": "How much headroom is under the span at {e}?", "census count": "How many people live in {e}?",
    "tide table": "When are high and low water at {e}?", "cargo manifest": "Which goods are shipped from {e}?",
    "budget ceiling": "What is the spending limit of {e}?", "relay station": "Which repeater post serves {e}?",
    "antenna height": "How tall is the mast at {e}?",
    "water ration": "How much drinking water is allowed daily in {e}?",
    "border marker": "Which boundary stone marks {e}?", "library quota": "How many books may one borrow at {e}?"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--facts", type=int, default=24)
    ap.add_argument("--folder", type=Path, default=None)
    ap.add_argument("--reuse", action="store_true", help="search the index a run left in --folder (no indexing)")
    args = ap.parse_args()
    work = args.folder or Path(tempfile.mkdtemp(prefix="bench-hybrid-"))
    docs = work / "docs"
    if not args.reuse:
        shutil.rmtree(docs, ignore_errors=True)
    docs.mkdir(parents=True, exist_ok=True)
    pages, facts = FactCorpus(seed=5).pages(args.pages, n_facts=args.facts, must_pages=(400,),
                                           lines_per_page=LINES_PER_PAGE)
    db = work / "knowledge.sqlite3"
    model = load_embedding_model(args.model)
    if not args.reuse:
        write_pdf(docs / f"handbook-{args.pages}.pdf", pages)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        with KnowledgeIndex(db) as index:
            index.add_folder(docs)
    start = time.perf_counter()
    summary = IndexJob(db, embedder=model).run()      # (reused: nothing changed, nothing to do)
    seconds = time.perf_counter() - start
    result: dict = {"model": args.model.name, "pooling": model.pooling, "machine_cores": os.cpu_count(),
                    "load_avg": round(os.getloadavg()[0], 2), "pages": args.pages}
    with KnowledgeIndex(db) as index:
        counts = index.counts()
        assert counts["embeddings"] == counts["chunks"] and summary.embedding_error is None, (counts, summary)
        result["index"] = ({"chunks": counts["chunks"], "reused": True} if args.reuse else
                           {"chunks": counts["chunks"], "seconds": round(seconds, 1),
                            "pages_per_s": round(args.pages / seconds, 2),
                            "chunks_per_s": round(counts["chunks"] / seconds, 2)})
        sets = {"as_written": [f.question for f in facts],
                "other_words": [PARAPHRASES[f.attribute].format(e=f.entity) for f in facts]}
        # (8: the passages the app asks for, retrieve_knowledge's limit, before its token budget)
        searches = {
            "lexical": lambda q: index.search(q, limit=8),
            "vectors_only": lambda q: index.search_vectors(model.embed_query(q), model.name, limit=8),
            "hybrid": lambda q: index.search(q, limit=8, embedder=model),      # (the app's: interleaved)
            "hybrid_rrf": lambda q: index.search(q, limit=8, embedder=model, fusion="rrf")}
        page400 = next((i for i, f in enumerate(facts) if f.page == 400), None)   # (fewer pages: none)
        result["recall_at_3"] = {}
        for set_name, questions in sets.items():
            for name, search in searches.items():
                found, found8, latencies = [], [], []
                for fact, question in zip(facts, questions):
                    start = time.perf_counter()
                    hits = search(question)
                    latencies.append((time.perf_counter() - start) * 1000)
                    where = [i for i, h in enumerate(hits) if h.page == fact.page and fact.value in h.text]
                    found.append(bool(where) and where[0] < 3)
                    found8.append(bool(where))
                result["recall_at_3"][f"{set_name}/{name}"] = {
                    "recall": round(sum(found) / len(facts), 3), "recall_at_8": round(sum(found8) / len(facts), 3),
                    "page_400": found[page400] if page400 is not None else None,
                    "ms_p50": round(statistics.median(latencies), 1),
                    "missed": [q for q, ok in zip(questions, found) if not ok]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

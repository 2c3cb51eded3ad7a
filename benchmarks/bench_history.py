"""Chat history at scale: the database with 2,000 chats x 20 turns and one 500-turn chat with
per-token records, built through the app's own classes (Chat, HistoryStore, the engine
client's TokenRecord), then timed the way the UI uses it.

    python benchmarks/bench_history.py [--chats 2000] [--turns 20] [--long-turns 500]
                                       [--reply-tokens 400] [--model PATH] [--folder DIR] [--no-model]

Prints one JSON object (seconds unless named otherwise):
- open_s / list_s / list_process_s: first use of a store (checks + quick_check), the chat list,
  and a fresh Python process from start to chat list filled;
- search_ms: search over all content (rare word, common word, two characters common / absent /
  Chinese, one character, a title word);
- load_long_s: opening the 500-turn chat with and without its token records;
- token_records_ms: decoding one 400-token reply's records, reading and decoding one from the
  database, and the five last replies' records as the token view asks for them;
- export_long_json_s / _mb, import_long_json_s: the 500-turn chat exported as JSON and imported
  back (and whether the import gives the same chat, token records included);
- save_*: a 400-token reply streamed into the 500-turn chat, saved every 20 tokens: the time the
  caller's (GUI) thread spends in save_async, and the writer thread's time per save;
- size_per_*_reply: database bytes per 400-token reply vs the same messages as the old
  one-file-per-chat JSON (compact, as saved); synthetic records (uniformly random token ids:
  the worst case for packing) and records of a reply the model really generated;
- fit_s: ChatModel.fit_prompt on 2,000 messages (cold, then with the kept counts), and the old
  drop-and-re-render loop vs the new one on the same 200-message chat (the reference).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatgui.common.types import Alternative, TokenEvent  # noqa: E402
from chatgui.store import HistoryStore  # noqa: E402
from chatgui.common.records import ReplyMeta  # noqa: E402
from chatgui.session import Chat  # noqa: E402
from chatgui.session.stored import message_to_dict  # noqa: E402
from chatgui.store import token_pack  # noqa: E402
from chatgui.store.export import SCHEMA  # noqa: E402
from chatgui.common.prompt import PromptMessage  # noqa: E402

rng = random.Random(1234)
WORDS = ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(1, 4)))
         for _ in range(3000)]


def token_record_fn():
    """The app's own record of a streamed token, as the engine client stores it."""
    from chatgui.common.records import TokenRecord

    def token_record(event) -> TokenRecord:
        return TokenRecord.from_event(event)
    return token_record


def piece(token_id: int) -> str:
    """A token's text: fixed per id, as a tokenizer's vocabulary is."""
    return " " + WORDS[token_id % len(WORDS)]


def fake_event(i: int, record):
    """A streamed token as the engine reports it: its probability, the top 5 alternatives under
    the model and under the sampling settings (mostly the same tokens, other probabilities)."""
    ids = [rng.randrange(50000) for _ in range(6)]
    alts = sorted((Alternative(t, piece(t), rng.random()) for t in ids[:5]), key=lambda a: -a.prob)
    salts = sorted((Alternative(t, piece(t), rng.random()) for t in ids[1:]), key=lambda a: -a.prob)
    event = TokenEvent(i, ids[0], piece(ids[0]), rng.random(), alts, rng.random(), salts)
    return record(event)


HANZI = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心"
         "多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外")


def sentence(n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def chinese(n: int) -> str:
    return "".join(rng.choice(HANZI) for _ in range(n)) + "。"


def build(store: HistoryStore, chats: int, turns: int, long_turns: int, reply_tokens: int, record) -> str:
    for c in range(chats):
        chat = Chat(title="" if c % 3 else f"chat {c} about {rng.choice(WORDS)}")
        text = chinese if c % 10 == 9 else sentence   # one chat in ten in Chinese
        for t in range(turns):
            chat.append("user", text(rng.randint(5, 30)))
            chat.append("assistant", text(rng.randint(20, 120)), meta={"model": "bench", "tokens": 60})
        store.save(chat)
    long = Chat(title="the long one")
    for t in range(long_turns):
        chat_tokens = [fake_event(i, record) for i in range(reply_tokens)]
        long.append("user", sentence(rng.randint(5, 30)))
        long.append("assistant", "".join(r.text for r in chat_tokens),
                    meta={"model": "bench", "tokens": reply_tokens, "token_data": chat_tokens})
        if t % 50 == 49:
            store.save(long)
    store.save(long)
    return long.id


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def db_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("history.sqlite3"))


def used_bytes(folder: Path) -> int:
    """Bytes of the database's pages in use (free pages left by replaced rows not counted)."""
    import sqlite3
    conn = sqlite3.connect(folder / "history.sqlite3")
    try:
        pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
    finally:
        conn.close()
    return (pages - free) * size


def bench_store(folder: Path, args, record) -> dict:
    out: dict = {}
    store = HistoryStore(folder, backups=False)
    t_build, long_id = timed(build, store, args.chats, args.turns, args.long_turns, args.reply_tokens, record)
    store.close()
    out["build_s"] = round(t_build, 2)
    out["db_mb"] = round(db_bytes(folder) / 1e6, 1)

    fresh = HistoryStore(folder, backups=False)
    out["open_s"] = round(timed(fresh.open)[0], 4)
    t_list, listed = timed(fresh.list_chats)
    out["list_s"] = round(t_list, 4)
    out["listed"] = len(listed)
    code = ("import sys,time; sys.path.insert(0, sys.argv[2]); from chatgui.store import HistoryStore;"
            "s = HistoryStore(sys.argv[1], backups=False); n = len(s.list_chats());"
            "print(time.time() - float(sys.argv[3]), n)")
    runs = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code, str(folder), str(ROOT), str(time.time())],
                           capture_output=True, text=True, check=True)
        runs.append(float(r.stdout.split()[0]))
    out["list_process_s"] = round(min(runs), 3)

    rare = next(w for w in WORDS if len(w) >= 6)
    searches = {}
    for name, query in (("rare_word", rare), ("common_word", WORDS[0][:3]), ("two_chars", "ba"),
                        ("two_chars_rare", "qx"), ("two_chars_cjk", "你好"), ("one_char", "k"),
                        ("title", "about")):
        times = [timed(fresh.search, query)[0] for _ in range(5)]
        searches[name] = round(statistics.median(times) * 1000, 1)
    searches["hits_rare"] = len(fresh.search(rare))
    searches["hits_two_chars"] = len(fresh.search("ba"))
    searches["hits_two_chars_cjk"] = len(fresh.search("你好"))
    out["search_ms"] = searches

    t_full, long = timed(fresh.load, long_id)
    t_light, _ = timed(fresh.load, long_id, tokens=False)
    t_path, path = timed(long.active_path)
    t_light = min(t_light, *(timed(fresh.load, long_id, tokens=False)[0] for _ in range(4)))
    out["load_long_s"] = {"with_token_records": round(t_full, 3), "without": round(t_light, 3),
                          "active_path": round(t_path, 4), "messages": len(long.messages)}
    # One reply's token records: the blob decoded (the token view asks for the replies on screen).
    light = fresh.load(long_id, tokens=False)
    replies = [m.id for m in light.active_path() if m.role == "assistant"]
    blob = fresh._query("SELECT t.data FROM token_records t JOIN messages m ON m.rowid = t.message_rowid"
                        " WHERE m.id=?", (replies[-1],))[0][0]
    decode = [timed(token_pack.unpack, blob)[0] for _ in range(20)]
    read = [timed(fresh.load_tokens, long_id, r)[0] for r in replies[-20:]]
    t_view, shown = timed(lambda: [light.token_data(r) for r in replies[-5:]])
    out["token_records_ms"] = {"decode_one_reply_p50": round(statistics.median(decode) * 1000, 2),
                               "read_and_decode_one_reply_p50": round(statistics.median(read) * 1000, 2),
                               "five_replies_on_screen": round(t_view * 1000, 1),
                               "tokens_per_reply": len(shown[-1])}

    # A reply streamed into the long chat, saved every 20 tokens as the UI's autosave would.
    fresh.close()
    before = used_bytes(folder)
    fresh = HistoryStore(folder, backups=False)
    long = fresh.load(long_id)
    caller, writer_times = [], []
    replies = 5
    for _ in range(replies):
        long.append("user", sentence(20))
        reply = long.append("assistant", "")
        tokens: list = []
        for i in range(args.reply_tokens):
            tokens.append(fake_event(i, record))
            if i % 20 == 19 or i == args.reply_tokens - 1:
                long.update_content(reply.id, "".join(r.text for r in tokens), ReplyMeta(token_data=tokens))
                t0 = time.perf_counter()
                fresh.save_async(long)
                caller.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                fresh.flush()
                writer_times.append(time.perf_counter() - t1)
    fresh.close()  # checkpoint: the WAL goes into the main file
    grown = (used_bytes(folder) - before) / replies
    out["save_stream_ms"] = {"caller_p50": round(statistics.median(caller) * 1000, 2),
                             "caller_max": round(max(caller) * 1000, 2),
                             "writer_p50": round(statistics.median(writer_times) * 1000, 2),
                             "writer_max": round(max(writer_times) * 1000, 2), "saves": len(caller)}
    last = long.messages[reply.id]
    old_compact = len(json.dumps(message_to_dict(last), ensure_ascii=False, separators=(",", ":")).encode())
    old_indented = len(json.dumps({"schema": SCHEMA, **message_to_dict(last)}, ensure_ascii=False, indent=2).encode())
    user_msg = long.messages[last.parent_id]
    old_compact += len(json.dumps(message_to_dict(user_msg), ensure_ascii=False, separators=(",", ":")).encode())
    blob = len(token_pack.pack(last.reply_meta.token_data))
    out["size_per_synthetic_reply"] = {"db_bytes": int(grown), "token_records_blob_bytes": blob, "old_json_bytes": old_compact,
                             "old_indented_export_bytes": old_indented,
                             "db_vs_old_json": round(grown / old_compact, 3)}
    exporter = HistoryStore(folder, backups=False)
    t_exp = min(timed(exporter.export_to_file, long_id, folder / "export.json")[0] for _ in range(3))
    out["export_long_json_s"] = round(t_exp, 2)
    out["export_long_json_mb"] = round((folder / "export.json").stat().st_size / 1e6, 1)
    t_imp, (copy_id,) = timed(exporter.import_file, folder / "export.json")
    copy, original = exporter.load(copy_id), exporter.load(long_id)
    copy.id = original.id
    out["import_long_json_s"] = round(t_imp, 2)
    out["import_gives_the_same_chat"] = copy == original
    exporter.close()
    return out


def load_bench_model(model_path: str | None):
    from chatgui.engine import load_model
    if model_path is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from tiny_gguf import write_tiny_model
        model_path = write_tiny_model(Path(tempfile.mkdtemp()) / "tiny.gguf", context=2048)
    return load_model(model_path, device="cpu")


def bench_real_reply(model, record, tokens: int) -> dict:
    """A reply really generated by the model, its records made by the UI's token_record: the
    database's growth per such reply (5 replies, search index merged as close() does) vs the
    old chat file's JSON for the same two messages."""
    from chatgui.common.types import SamplingSettings
    g = model.generate([PromptMessage.user("Write a very long story about a lighthouse keeper.")],
                       SamplingSettings(max_new_tokens=tokens, seed=7), ignore_eos=True)
    records = [record(e) for e in g]
    folder = Path(tempfile.mkdtemp(prefix="bench-reply-"))
    store = HistoryStore(folder, backups=False)
    chat = Chat(title="real replies")
    store.save(chat)
    store.close()
    before = used_bytes(folder)
    store = HistoryStore(folder, backups=False)
    for _ in range(5):
        user = chat.append("user", "Write a very long story about a lighthouse keeper.")
        reply = chat.append("assistant", g.text, meta={"model": model.name, "tokens": len(records),
                                                       "token_data": list(records)})
        store.save(chat)
    store.close()
    grown = (used_bytes(folder) - before) / 5
    old = sum(len(json.dumps(message_to_dict(m), ensure_ascii=False, separators=(",", ":")).encode())
              for m in (user, reply))
    return {"tokens": len(records), "db_bytes": int(grown), "token_records_blob_bytes": len(token_pack.pack(records)),
            "old_json_bytes": old, "db_vs_old_json": round(grown / old, 3)}


def bench_fit(model) -> dict:
    msgs = [PromptMessage.system("You are a helpful assistant.")]
    for i in range(1000):
        msgs += [PromptMessage.user(sentence(rng.randint(5, 30))),
                 PromptMessage.assistant(sentence(rng.randint(20, 120)))]
    msgs.append(PromptMessage.user("and now?"))
    cold, (ids, dropped) = timed(model.fit_prompt, msgs, 512)
    warm, _ = timed(model.fit_prompt, msgs, 512)
    small = msgs[:201]
    sys.path.insert(0, str(ROOT / "tests"))
    from fit_reference import fit_by_rerendering
    t_old, expected = timed(fit_by_rerendering, model, small, 512)
    model.__dict__.pop("_count_cache", None)
    t_new, got = timed(model.fit_prompt, small, 512)
    return {"model": model.name, "context": model.context_length, "messages": len(msgs) - 1,
            "fit_2000_cold_s": round(cold, 3), "fit_2000_warm_s": round(warm, 3), "dropped": dropped,
            "prompt_tokens": len(ids),
            "ref_200_old_loop_s": round(t_old, 3), "ref_200_new_s": round(t_new, 3),
            "ref_same_result": got == expected, "ref_speedup": round(t_old / max(t_new, 1e-9), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", type=int, default=2000)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--long-turns", type=int, default=500)
    ap.add_argument("--reply-tokens", type=int, default=400)
    ap.add_argument("--model", default=None, help="GGUF for the fitting figures (default: the app's "
                    "default model if present, else a tiny test model)")
    ap.add_argument("--folder", default=None, help="data folder to build in (default: a temporary one)")
    ap.add_argument("--no-model", action="store_true", help="skip the figures that need a model (fitting, a real reply)")
    args = ap.parse_args()
    if args.model is None:
        from chatgui.models.default_model import default_model_path
        found = default_model_path(fetch=False)
        args.model = str(found) if found and Path(found).is_file() else None
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-history-"))
    folder.mkdir(parents=True, exist_ok=True)
    result = {"chats": args.chats, "turns": args.turns, "long_turns": args.long_turns,
              "reply_tokens": args.reply_tokens, "cpus": os.cpu_count(),
              "load_avg": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    record = token_record_fn()
    result.update(bench_store(folder, args, record))
    if not args.no_model:
        model = load_bench_model(args.model)
        result["size_per_real_reply"] = bench_real_reply(model, record, args.reply_tokens)
        result["fit"] = bench_fit(model)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

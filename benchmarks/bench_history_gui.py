"""A heavy user's history, timed in the real window (offscreen): 2,000 chats x 20 turns plus one
500-turn chat whose replies carry per-token records, built with the app's own classes.

    python benchmarks/bench_history_gui.py [--data DIR] [--chats 2000] [--turns 20]
                                           [--long-turns 500] [--reply-tokens 400] [--model PATH]

Prints one JSON object: process start to window shown and to chat list filled; opening the
500-turn chat (click to its last message drawn) and the memory it costs; turning the token view
on in it; scrolling it from the end to the top and back (widgets drawn at most, the longest
stall); then a --reply-tokens reply streamed into it from the real model (sent after the reading above,
so the chat was prepared meanwhile), and a second one right after it, with the time to their
first tokens, the event-loop gaps over both (a 5 ms QTimer probe) and the longest save call
made on the GUI thread. --data keeps the
built history for the next run (it is reused when it is there).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gui import gap_figures  # noqa: E402
LONG_TITLE = "the long one"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- building the history (parent process) ----------------------------------------------------
def build(folder: Path, chats: int, turns: int, long_turns: int, reply_tokens: int) -> None:
    sys.path.insert(0, str(ROOT))
    from chatgui.common.records import TokenRecord
    from chatgui.common.types import Alternative, TokenEvent
    from chatgui.store import HistoryStore
    from chatgui.session import Chat

    rng = random.Random(1234)
    words = ["".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(rng.randint(1, 4)))
             for _ in range(3000)]

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    def piece(token_id: int) -> str:
        return " " + words[token_id % len(words)]

    def record(i: int) -> dict:
        ids = [rng.randrange(50000) for _ in range(6)]
        alts = sorted((Alternative(t, piece(t), rng.random()) for t in ids[:5]), key=lambda a: -a.prob)
        salts = sorted((Alternative(t, piece(t), rng.random()) for t in ids[1:]), key=lambda a: -a.prob)
        event = TokenEvent(i, ids[0], piece(ids[0]), rng.random(), alts, rng.random(), salts)
        return TokenRecord.from_event(event).to_dict()

    store = HistoryStore(folder, backups=False)
    for c in range(chats):
        chat = Chat(title="" if c % 3 else f"chat {c} about {rng.choice(words)}")
        for _ in range(turns):
            chat.append("user", sentence(rng.randint(5, 30)))
            chat.append("assistant", sentence(rng.randint(20, 120)), meta={"model": "bench", "tokens": 60})
        store.save(chat)
    long = Chat(title=LONG_TITLE)
    for t in range(long_turns):
        records = [record(i) for i in range(reply_tokens)]
        long.append("user", sentence(rng.randint(5, 30)))
        long.append("assistant", "".join(r["t"] for r in records),
                    meta={"model": "bench", "tokens": reply_tokens, "token_data": records})
        if t % 50 == 49:
            store.save(long)
    store.save(long)
    store.close()


# -- the window (child process) ---------------------------------------------------------------
def child(args) -> None:
    t_start = float(os.environ["BENCH_T0"])
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    import chatgui.ui  # noqa: F401
    from chatgui.store import HistoryStore
    from chatgui.ui.main_window import MainWindow

    gui_saves: list[float] = []   # seconds per save call made on the GUI thread
    for name in ("save", "save_async"):
        original = getattr(HistoryStore, name)

        def timed_save(self, *a, _original=original, **k):
            t, cpu = time.perf_counter(), time.thread_time()
            try:
                return _original(self, *a, **k)
            finally:   # wall time, and this thread's own CPU time (the rest: other threads held the GIL)
                gui_saves.append((time.perf_counter() - t, time.thread_time() - cpu))
        setattr(HistoryStore, name, timed_save)

    import gc
    gc_pauses: list[float] = []   # the collector's passes, seconds: they stop every thread
    gc_start = [0.0]

    def on_gc(phase, _info):
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_pauses.append(time.perf_counter() - gc_start[0])
    gc.callbacks.append(on_gc)

    app = QApplication([])
    window = MainWindow()
    window.resize(1200, 800)
    window.show()
    app.processEvents()
    out = {"process_start_to_window_shown_s": round(time.time() - t_start, 3)}
    if window.chat_list.chat_ids():   # filled before the window was shown
        out["process_start_to_chat_list_filled_s"] = out["process_start_to_window_shown_s"]
    clock = QElapsedTimer()
    gaps: list[float] = []
    state = {"probing": False, "done": False}

    def tick():   # the event-loop probe: every gap between two ticks is time the window was frozen
        if state["probing"]:
            gap = clock.nsecsElapsed() / 1e6
            gaps.append(gap)
            if gap > state.get("worst", (0.0, 0.0))[0]:
                state["worst"] = (gap, time.time() - gap / 1000 - state.get("t_send", 0.0))
        clock.restart()

    def script():
        """The steps, run inside the event loop (widgets dropped with deleteLater are only freed
        there); each `yield ms` gives the loop back for that long."""
        # (the model's thread imports torch now, which holds the GIL in long stretches)
        out["process_start_to_first_event_loop_turn_s"] = round(time.time() - t_start, 3)
        while not window.chat_list.chat_ids():
            yield 0
        out.setdefault("process_start_to_chat_list_filled_s", round(time.time() - t_start, 3))
        out["chats_listed"] = len(window.chat_list.chat_ids())
        while window.model_controller.loaded is None:   # the model loads on its own thread; time the window alone
            yield 50
        long_id = next(s.id for s in window.library.store.list_chats() if s.title == LONG_TITLE)
        yield 500
        rss0 = rss_mb()
        t = time.perf_counter()
        window.open_chat(long_id)
        app.processEvents()
        last = window.view.message_widgets()[-1]
        out["open_long_chat_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out["last_message_drawn"] = last.isVisible() and last.message_id == window.current.active_path()[-1].id
        out["messages_in_long_chat"] = len(window.current.active_path())
        out["widgets_after_open"] = len(window.view.message_widgets())
        yield 1000
        out["rss_growth_open_mb"] = round(rss_mb() - rss0, 1)

        t = time.perf_counter()
        window.explain.set_token_view(True)
        app.processEvents()
        out["token_view_on_ms"] = round((time.perf_counter() - t) * 1000, 1)
        yield 200

        # To the top a screen at a time, as a reader would, then back to the latest.
        bar = window.view.verticalScrollBar()
        gaps.clear()
        state["probing"] = True
        most, steps = 0, 0
        while (window.view.drawn_range()[0] > 0 or bar.value() > 0) and steps < 20000:
            bar.setValue(bar.value() - window.view.viewport().height())
            steps += 1
            yield 30
            most = max(most, len(window.view.message_widgets()))
        state["probing"] = False
        gaps.sort()
        out["scroll_to_top_steps"] = steps
        out["scroll_gap_ms_max"] = round(gaps[-1], 1) if gaps else None
        out["widgets_drawn_max_while_scrolling"] = most
        out["first_message_reached"] = window.view.drawn_range()[0] == 0
        window.view.jump_to_latest()
        yield 1000
        out["rss_growth_after_scrolling_mb"] = round(rss_mb() - rss0, 1)
        window.explain.set_token_view(False)
        yield 200

        # A reply streamed into the long chat from the real model.
        gaps.clear()
        gui_saves.clear()
        gc_pauses.clear()
        state.pop("worst", None)
        window.send_message("Write a very long essay about the history of lighthouses.")
        state["t_send"] = time.time()
        state["probing"] = True
        clock.restart()

    def on_first_token(*_):
        state.setdefault("t_first2" if "t_send2" in state else "t_first", time.time())

    def on_finished(meta):
        if "t_end" not in state:   # the first reply is done: a second one, right away (the cache holds the first)
            state["meta"], state["t_end"] = meta, time.time()
            QTimer.singleShot(0, send_again)
            return
        state["probing"] = False
        state["done"], state["t_end2"] = True, time.time()
        QTimer.singleShot(300, app.quit)

    def send_again():
        state["t_send2"] = time.time()
        window.send_message("Now in three sentences.")

    steps = script()

    def step():
        try:
            QTimer.singleShot(next(steps), step)
        except StopIteration:
            pass

    import chatgui.engine.chat_model as chat_model   # the reply runs to --reply-tokens: no end-of-turn
    generate = chat_model.ChatModel.generate
    chat_model.ChatModel.generate = lambda self, *a, **k: generate(self, *a, **{**k, "ignore_eos": True})
    window.replies.finished.connect(on_finished)
    on_tokens = window.replies._on_tokens   # noqa: SLF001 (timing only: the first token to arrive)
    window.replies._on_tokens = lambda *a: (on_first_token(), on_tokens(*a))
    probe = QTimer(interval=5)
    probe.timeout.connect(tick)
    probe.start()
    QTimer.singleShot(0, step)
    QTimer.singleShot(int(args.timeout * 1000), app.quit)
    app.exec()
    gaps.sort()
    meta = state.get("meta")   # the reply's ReplyMeta
    out.update({
        "reply_finished": state["done"],
        "reply_tokens": meta.tokens if meta is not None else None,
        "reply_first_token_s": round(state["t_first"] - state["t_send"], 2) if "t_first" in state else None,
        "reply_seconds": round(state["t_end"] - state["t_send"], 2) if "t_end" in state else None,
        "second_reply_first_token_s": round(state["t_first2"] - state["t_send2"], 2) if "t_first2" in state else None,
        **gap_figures(gaps),
        "event_loop_longest_gap_began_after_send_s": round(state["worst"][1], 2) if "worst" in state else None,
        "gui_thread_save_ms_max": round(max(w for w, _c in gui_saves) * 1000, 2) if gui_saves else None,
        "gui_thread_save_cpu_ms_max": round(max(c for _w, c in gui_saves) * 1000, 2) if gui_saves else None,
        "gui_thread_saves": len(gui_saves),
        "gc_pause_ms_max_while_streaming": round(max(gc_pauses) * 1000, 1) if gc_pauses else None,
    })
    window.close()
    print(json.dumps(out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="where to build (or find) the history; default: a temporary folder")
    ap.add_argument("--chats", type=int, default=2000)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--long-turns", type=int, default=500)
    ap.add_argument("--reply-tokens", type=int, default=400)
    ap.add_argument("--model", default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        child(args)
        return 0
    sys.path.insert(0, str(ROOT))
    from chatgui.models.default_model import default_model_path
    from chatgui.store import AppSettings, save_settings

    model = args.model or str(default_model_path(fetch=True))
    tmp = tempfile.mkdtemp()
    try:
        data = Path(args.data) if args.data else Path(tmp, "data")
        built_s = None
        if not (data / "history.sqlite3").exists():
            t = time.time()
            build(data, args.chats, args.turns, args.long_turns, args.reply_tokens)
            built_s = round(time.time() - t, 1)
        cfg = Path(tmp, "config")
        cfg.mkdir()
        settings = AppSettings()
        settings.sampling = {**settings.sampling, "max_new_tokens": args.reply_tokens, "temperature": 0.0}
        save_settings(settings, str(cfg / "settings.json"))
        env = {**os.environ, "CHATGUI_DATA_DIR": str(data), "CHATGUI_CONFIG_DIR": str(cfg),
               "CHATGUI_MODEL": model, "CHATGUI_NO_FETCH": "1", "QT_QPA_PLATFORM": "offscreen",
               "BENCH_T0": repr(time.time())}
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_child", "--timeout", str(args.timeout)],
                           env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode != 0 or not r.stdout.strip():
        print(json.dumps({"error": (r.stderr or r.stdout).strip().splitlines()[-5:]}))
        return 1
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["history_built_s"] = built_s
    result["targets"] = {
        "process_start_to_window_shown_s": "<= 1.0", "process_start_to_chat_list_filled_s": "<= 1.5",
        "open_long_chat_ms": "<= 300", "rss_growth_open_mb": "<= 150", "token_view_on_ms": "<= 300",
        "event_loop_gap_ms_p99": "<= 30", "event_loop_gap_ms_max": "<= 100", "gui_thread_save_ms_max": "<= 5",
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

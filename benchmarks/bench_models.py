"""Every real model against llama.cpp in one run (issue 13): load, memory, speed, multi-turn.

    python benchmarks/bench_models.py --models-dir DIR [--models a.gguf,b.gguf] [--quick]
                                      [--json OUT.json] [--markdown OUT.md]

For each model, in separate subprocesses (so each peak RSS is the engine's own):
  ours (first load)   with an empty weight cache: the repacking included
  ours (repeat load)  the same model again: the cache mapped
  llama.cpp           llama-cpp-python, 2 threads (a benchmark-only tool, never an app dependency)
Measured in each (see bench_engine.py): load, peak RSS, TTFT (short chat), prefill of 1,000
tokens, decode of 256, decode after a 4,000-token prompt, and the TTFT of turn 1 and turn 10 of a
10-turn chat whose KV cache is reused across turns (3 turns with --quick: "turn10" keys then
hold the last turn). The machine is shared and noisy: only ratios
measured in the same run mean anything. Prints the JSON; writes it and a Markdown table if asked.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_engine import ORIGINAL_ENV, run_llama_cpp, run_ours  # noqa: E402

DEFAULT_MODELS = ["smollm2-135m-q4_1.gguf", "gemma3-270m-q4_k_m.gguf", "qwen2.5-coder-0.5b-q4_k_m.gguf",
                  "qwen2.5-coder-1.5b-q4_k_m.gguf"]
QUESTIONS = ["What is a list in Python?", "How do I sort it?", "And in reverse?", "What about a dict?",
             "How do I loop over one?", "What is a set?", "How do I join strings?", "What is a tuple?",
             "How do I read a file?", "Thanks! Summarize."]
TURN_REPLY_TOKENS = 32


def chat_turns_ours(m, quick=False) -> dict:
    from chatgui.common.prompt import PromptMessage
    from chatgui.engine import SamplingSettings

    s = SamplingSettings(temperature=0, repeat_penalty=1.0, max_new_tokens=TURN_REPLY_TOKENS)
    messages, ttft = [], []
    # The chat starts cold, as llama.cpp's does after reset(): otherwise turn 1 would reuse the
    # system prompt left in the cache by the measurements before (and look 2x faster than it is).
    m._cache_ids = []
    for q in QUESTIONS[:3] if quick else QUESTIONS:
        messages.append(PromptMessage.user(q))
        g = m.generate(messages, s, ignore_eos=True)
        for _ in g:
            pass
        ttft.append(g.stats.time_to_first_token)
        messages.append(PromptMessage.assistant(g.text))
    return {"turns": len(ttft), "turn1_ttft_s": round(ttft[0], 4), "turn10_ttft_s": round(ttft[-1], 4),
            "turn10_prompt_tokens": g.stats.prompt_tokens}


def chat_turns_llama_cpp(llm, quick=False) -> dict:
    llm.reset()
    messages, ttft = [], []
    for q in QUESTIONS[:3] if quick else QUESTIONS:
        messages.append({"role": "user", "content": q})
        t = time.perf_counter()
        first, text = None, ""
        for chunk in llm.create_chat_completion(messages, temperature=0, max_tokens=TURN_REPLY_TOKENS, stream=True):
            delta = chunk["choices"][0]["delta"].get("content") or ""
            if first is None and delta:
                first = time.perf_counter() - t
            text += delta
        ttft.append(first if first is not None else time.perf_counter() - t)
        messages.append({"role": "assistant", "content": text})
    return {"turns": len(ttft), "turn1_ttft_s": round(ttft[0], 4), "turn10_ttft_s": round(ttft[-1], 4)}


def child(which: str, path: str, quick: bool) -> dict:
    if which == "ours":
        return run_ours(path, "cpu", quick, after=lambda m: chat_turns_ours(m, quick))
    return run_llama_cpp(path, quick, after=lambda llm: chat_turns_llama_cpp(llm, quick))


def in_subprocess(which: str, path: str, quick: bool, data_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--_child", which, "--_model", path] + (["--quick"] if quick else [])
    env = dict(ORIGINAL_ENV if which == "llama-cpp" else os.environ, CHATGUI_DATA_DIR=data_dir)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


RATIO_KEYS = ["decode_tok_s", "prefill_tok_s", "decode_long_ctx_tok_s", "ttft_s", "load_s", "peak_rss_mb"]


def median_run(runs: list[dict]) -> dict:
    """Each figure's median over the rounds that did not fail (other fields: the first's)."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    out = dict(ok[0])
    for k, v in ok[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = round(statistics.median(r[k] for r in ok), 4)
    out["rounds"] = len(ok)
    return out


def bench_model(path: str, quick: bool, rounds: int = 1) -> dict:
    """rounds > 1: ours (a first load, a repeat load) and llama.cpp in turn, each round; the
    medians of each figure are compared."""
    firsts, repeats, refs = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="chatgui-bench-") as data_dir:     # an empty weight cache
            firsts.append(in_subprocess("ours", path, quick, data_dir))
            repeats.append(in_subprocess("ours", path, quick, data_dir))
            refs.append(in_subprocess("llama-cpp", path, quick, data_dir))
    first, repeat, ref = median_run(firsts), median_run(repeats), median_run(refs)
    out = {"model": os.path.basename(path), "ours_first_load": first, "ours": repeat, "llama_cpp": ref}
    if "error" not in repeat and "error" not in ref:
        ratios = {k: round(repeat[k] / ref[k], 3) for k in RATIO_KEYS}
        if "error" not in first:
            ratios["first_load_s"] = round(first["load_s"] / ref["load_s"], 3)
        ratios["turn10_over_turn1_ttft_ours"] = round(repeat["turn10_ttft_s"] / repeat["turn1_ttft_s"], 3)
        ratios["turn10_over_turn1_ttft_llama_cpp"] = round(ref["turn10_ttft_s"] / ref["turn1_ttft_s"], 3)
        out["ratios_ours_over_llama_cpp"] = ratios
    return out


def markdown(result: dict) -> str:
    n_prefill, n_ctx = (200, "1k") if result.get("quick") else ("1k", "4k")
    rows = [("decode tok/s", "decode_tok_s"), (f"prefill tok/s ({n_prefill})", "prefill_tok_s"),
            (f"decode at {n_ctx} ctx tok/s", "decode_long_ctx_tok_s"), ("TTFT s", "ttft_s"),
            ("repeat load s", "load_s"), ("peak RSS MB", "peak_rss_mb")]
    rounds = result.get("rounds", 1)
    lines = [f"Measured {result['date']} on {result['machine']} ({result['cpu_count']} cores), "
             "ours / llama.cpp (ratio), same run" + (f", medians of {rounds} rounds." if rounds > 1 else "."), "",
             "| model | " + " | ".join(r[0] for r in rows) + " | first load s | last / first chat turn TTFT |",
             "|---" * (len(rows) + 3) + "|"]
    for m in result["models"]:
        ours, ref, first = m["ours"], m["llama_cpp"], m["ours_first_load"]
        if "error" in ours or "error" in ref:
            lines.append(f"| {m['model']} | error: {ours.get('error') or ref.get('error')} |")
            continue
        cells = [f"{ours[k]} / {ref[k]} ({ours[k] / ref[k]:.2f}x)" for _, k in rows]
        cells.append(f"{first.get('load_s', '-')} / {ref['load_s']}")
        cells.append(f"{ours['turn10_ttft_s'] / ours['turn1_ttft_s']:.2f} / "
                     f"{ref['turn10_ttft_s'] / ref['turn1_ttft_s']:.2f}")
        lines.append(f"| {m['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=os.environ.get("CHATGUI_BIG_MODELS", "."))
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated file names")
    ap.add_argument("--quick", action="store_true", help="shorter runs (smoke test of the script)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per model; each figure's median is reported")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_model", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print(json.dumps(child(args._child, args._model, args.quick)))
        return 0
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "cpu_count": os.cpu_count(), "quick": args.quick, "rounds": args.rounds, "models": []}
    for name in args.models.split(","):
        path = Path(args.models_dir) / name
        if not path.is_file():
            result["models"].append({"model": name, "ours": {"error": "file not found"}, "llama_cpp": {}})
            continue
        result["models"].append(bench_model(str(path), args.quick, max(1, args.rounds)))
        print(json.dumps(result["models"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(markdown(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

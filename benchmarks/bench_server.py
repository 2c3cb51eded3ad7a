"""What serving over HTTP costs: the default model's speed through `python -m chatgui.server`
(the official openai client, streaming) against `model.generate` in-process, in one run.

    python benchmarks/bench_server.py [--model PATH] [--tokens 128] [--runs 3]

Prints one JSON object. Greedy decoding; each run asks a different question (both sides ask
the same ones in the same order, so both reuse their KV cache alike). Time to first token is
measured by the caller: for the server it includes the HTTP round trip and the SSE parsing.
Decode speed is (tokens - 1) / (time from first to last token), as the engine reports it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = ["Write a long story about a dragon who learns to paint.",
             "Write a long story about a lighthouse keeper and a storm.",
             "Write a long story about a robot who wants to be a gardener.",
             "Write a long story about two friends crossing a desert.",
             "Write a long story about a baker in a small mountain town."]
WARMUP = "Say hello."


def messages(question: str) -> list[dict]:
    """The chat as the API sends it (the in-process run reads it as the server does)."""
    return [{"role": "user", "content": question}]


def summarize(t0: float, arrivals: list[float], tokens: int) -> dict:
    first, last = arrivals[0], arrivals[-1]
    return {"tokens": tokens, "ttft_s": first - t0,
            "decode_tok_s": (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0,
            "end_to_end_tok_s": tokens / (last - t0)}


def run_in_process(model, question: str, max_tokens: int) -> dict:
    """On a worker thread, as the app's engine worker and the server both run the model: torch's
    OpenMP threads behave differently on the main thread (much slower on a busy machine)."""
    from chatgui.common.prompt import PromptMessage
    from chatgui.engine import SamplingSettings
    settings = SamplingSettings(temperature=0, max_new_tokens=max_tokens)
    result = {}

    def work():
        t0 = time.perf_counter()
        gen = model.generate([PromptMessage.from_wire(m) for m in messages(question)], settings)
        arrivals = [time.perf_counter() for _ in gen]
        result.update(summarize(t0, arrivals, gen.stats.generated_tokens))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return result


def run_through_server(client, model_id: str, question: str, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    stream = client.chat.completions.create(model=model_id, messages=messages(question), temperature=0,
                                            max_tokens=max_tokens, stream=True,
                                            stream_options={"include_usage": True})
    arrivals, tokens = [], 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return summarize(t0, arrivals, tokens)


def median_of(runs: list[dict]) -> dict:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}


def start_server_process(path: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chatgui.server", "--model", str(path), "--port", "0",
                             "--device", "cpu", "--quiet"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="GGUF file (default: the default model)")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    import openai
    import torch

    from chatgui.engine import load_model
    from chatgui.models.default_model import default_model_path

    path = Path(args.model) if args.model else default_model_path(fetch=True)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.runs)]

    model = load_model(path, device="cpu")
    proc, url = start_server_process(path)
    load_before = os.getloadavg()[0]
    local, served = [], []
    try:
        client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=0, timeout=600)
        model_id = client.models.list().data[0].id
        run_in_process(model, WARMUP, 8)
        run_through_server(client, model_id, WARMUP, 8)
        # Interleaved, so that both sides see the same background load on a shared machine.
        for q in questions:
            local.append(run_in_process(model, q, args.tokens))
            served.append(run_through_server(client, model_id, q, args.tokens))
    finally:
        proc.terminate()
        proc.wait(10)

    a, b = median_of(local), median_of(served)
    print(json.dumps({
        "model": path.name, "device": "cpu", "torch_threads": torch.get_num_threads(), "max_tokens": args.tokens,
        "runs": args.runs, "greedy": True, "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "in_process": a, "server_openai_stream": b,
        "server_decode_speed_vs_in_process": round(b["decode_tok_s"] / a["decode_tok_s"], 3),
        "server_ttft_overhead_ms": round((b["ttft_s"] - a["ttft_s"]) * 1000, 1),
        "per_run": {"in_process": local, "server_openai_stream": served},
    }, indent=1))


if __name__ == "__main__":
    main()

"""`python -m chatgui.models list|pull|rm|verify|path`: the model catalog from a terminal.

CHATGUI_DATA_DIR chooses the data folder, as in the app.
"""
from __future__ import annotations

import argparse
import shutil
import sys

from chatgui.common.paths import models_dir

from .catalog import default_entry, get_entry, load_catalog
from .download import DownloadSpec, partial_for, pull
from .errors import ModelFetchError, Paused
from .fit import entry_fit
from .library import installed_path, remove, verify_installed
from .transfer import Progress


def human_size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(p: Progress, width: int = 30) -> str:
    if p.stage == "waiting":
        return "waiting for another download of this model to finish…"
    frac = p.fraction or 0.0
    bar = "#" * int(frac * width) + "." * (width - int(frac * width))
    total = human_size(p.total) if p.total else "?"
    label = {"verify": "checking", "install": "installing"}.get(p.stage, "")
    speed = f"{p.speed / 1e6:5.1f} MB/s  {human_time(p.eta)} left" if p.stage == "download" else label
    return f"[{bar}] {frac * 100:5.1f}%  {p.done / 1e6:,.0f}/{total}  {speed}"


def cmd_list(args) -> int:
    for e in load_catalog():
        if installed_path(e):
            state = "installed"
        elif partial_for(DownloadSpec.from_entry(e)).part.exists():
            state = "partial"
        else:
            state = "not installed"
        extra = " (default)" if e.default else (" (embeddings for Knowledge, not chat)" if e.is_embedding else
                                                (" (text completion, not chat)" if not e.is_chat else ""))
        print(f"{e.id:<20} {human_size(e.size):>8}  {state:<13} {entry_fit(e, args.context):<12} {e.name}{extra}")
    return 0


def cmd_pull(args) -> int:
    entry = get_entry(args.id) if args.id else default_entry()
    tty = sys.stderr.isatty()
    last = [""]

    def show(p: Progress) -> None:
        line = progress_line(p)
        if tty:
            print("\r" + line.ljust(shutil.get_terminal_size((100, 20)).columns - 1), end="", file=sys.stderr,
                  flush=True)
        elif line[:40] != last[0][:40]:       # in a log: only when the bar moves
            print(line, file=sys.stderr, flush=True)
        last[0] = line

    try:
        path = pull(DownloadSpec.from_entry(entry), progress=show)
    except KeyboardInterrupt:
        print("\nstopped; what was downloaded is kept: run pull again to resume", file=sys.stderr)
        return 130
    except Paused:
        return 130
    except ModelFetchError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    if tty:
        print(file=sys.stderr)
    print(path)
    return 0


def cmd_rm(args) -> int:
    entry = get_entry(args.id)
    p = models_dir() / entry.file
    partial = partial_for(DownloadSpec.from_entry(entry))
    had = p.exists() or partial.part.exists()
    remove(p)
    partial.discard()
    print(f"removed {entry.id}" if had else f"{entry.id} was not installed")
    return 0


def cmd_verify(args) -> int:
    results = verify_installed()
    for r in results:
        print(f"{r.entry.id:<20} {'ok' if r.ok else 'BAD'}  {r.detail if not r.ok else r.path}")
    if not results:
        print("no catalog models installed")
    return 0 if all(r.ok for r in results) else 1


def cmd_path(args) -> int:
    from .default_model import default_model_path
    p = default_model_path(fetch=False)
    print(p if p else "not found")
    return 0 if p else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chatgui.models", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="one line per catalog model: id, size, installed or not, fit")
    ls.add_argument("--context", type=int, default=4096, help="context length for the fit label (default 4096)")
    p = sub.add_parser("pull", help="download a model (resumes; checks its sha256); default: the default model")
    p.add_argument("id", nargs="?")
    r = sub.add_parser("rm", help="delete a downloaded model (and any partial download)")
    r.add_argument("id")
    sub.add_parser("verify", help="check the sha256 of every installed catalog model")
    sub.add_parser("path", help="print where the default model is (exit 1 if it is not here)")
    args = ap.parse_args(argv)
    try:
        return {"list": cmd_list, "pull": cmd_pull, "rm": cmd_rm, "verify": cmd_verify, "path": cmd_path}[args.cmd](args)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

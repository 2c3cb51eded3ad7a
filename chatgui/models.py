"""`python -m chatgui.models pull|path`: fetch or locate the default model."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chatgui.models", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("pull", help="download the default model (SmolLM2-135M-Instruct Q4_1, 98 MB) if missing")
    sub.add_parser("path", help="print where the default model is (exit 1 if it is not here)")
    args = ap.parse_args(argv)
    from chatgui.engine.default_model import ModelFetchError, default_model_path

    if args.cmd == "path":
        p = default_model_path(fetch=False)
        print(p if p else "not found")
        return 0 if p else 1
    last = [""]

    def progress(stage, frac):
        if stage != last[0]:
            print(f"{stage}...", file=sys.stderr)
            last[0] = stage

    try:
        print(default_model_path(fetch=True, progress=progress))
    except ModelFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

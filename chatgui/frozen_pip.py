"""Running pip inside a frozen (PyInstaller) bundle.

A bundle has no `python -m pip`: sys.executable is the app itself. So the app understands one
hidden argument, `--run-pip ARGS...`, and runs the bundled pip with ARGS in a child process of
itself. chatgui.models (model downloads) uses it; pip keeps its own index settings, so the bundle fetches
the default model exactly like the installed app does.
"""
from __future__ import annotations

import sys

FLAG = "--run-pip"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def pip_command(*args: str) -> list[str]:
    if is_frozen():
        return [sys.executable, FLAG, *args]
    return [sys.executable, "-m", "pip", *args]


def maybe_run_pip(argv: list[str]) -> int | None:
    """If argv asks for pip, run it and return its exit code; otherwise None."""
    if len(argv) < 2 or argv[1] != FLAG:
        return None
    from pip._internal.cli.main import main as pip_main

    return int(pip_main(argv[2:]) or 0)

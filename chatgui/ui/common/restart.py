"""Starting chatgui again (after a language change): the window closes as always, saving
everything and releasing the single-instance lock, then chatgui.ui.app.main starts the same
program with the same arguments."""
from __future__ import annotations

import sys


def restart_command(argv: list[str] | None = None, frozen: bool | None = None) -> tuple[str, list[str]]:
    """(program, arguments) that start this chatgui again."""
    argv = sys.argv if argv is None else argv
    frozen = getattr(sys, "frozen", False) if frozen is None else frozen
    if frozen:   # a bundle: the executable is the app
        return sys.executable, list(argv[1:])
    return sys.executable, ["-m", "chatgui", *argv[1:]]


def request_restart(window) -> None:
    """Close the window (everything is saved as on any close) and start again after it."""
    window.restart_requested = True
    window.close()


def restart_if_requested(window) -> bool:
    if not getattr(window, "restart_requested", False):
        return False
    from PySide6.QtCore import QProcess
    program, arguments = restart_command()
    return QProcess.startDetached(program, arguments)[0]

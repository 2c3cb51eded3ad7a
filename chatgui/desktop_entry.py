"""Put chatgui into the desktop's application menu (freedesktop.org: Linux and BSD desktops).

    chatgui --install-desktop-entry      (or: python -m chatgui.desktop_entry install)
    chatgui --uninstall-desktop-entry    (or: python -m chatgui.desktop_entry uninstall)

install() writes $XDG_DATA_HOME/applications/chatgui.desktop and the icon into
$XDG_DATA_HOME/icons/hicolor/; uninstall() removes exactly those files. Both can run again.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from chatgui.assets import ICON_SIZES, icon_path
from chatgui.common.io import atomic_write_bytes

APP_ID = "chatgui"  # the desktop file name, the icon name, and Qt's desktopFileName
INSTALL_FLAG, UNINSTALL_FLAG = "--install-desktop-entry", "--uninstall-desktop-entry"
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def desktop_file_path() -> Path:
    return data_home() / "applications" / f"{APP_ID}.desktop"


def icon_files() -> dict[Path, Path]:
    """Installed icon path -> the packaged file it is copied from."""
    hicolor = data_home() / "icons" / "hicolor"
    files = {hicolor / f"{n}x{n}" / "apps" / f"{APP_ID}.png": icon_path(n) for n in ICON_SIZES}
    files[hicolor / "scalable" / "apps" / f"{APP_ID}.svg"] = icon_path()
    return files


def launch_command() -> list[str]:
    """How the menu starts chatgui: this bundle, else the `chatgui` launcher on PATH, else python -m."""
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    launcher = shutil.which(APP_ID)
    if launcher:
        return [os.path.abspath(launcher)]
    return [os.path.abspath(sys.executable), "-m", APP_ID]


def exec_value(args: Sequence[str]) -> str:
    """The Exec= value for args: quoted per the Desktop Entry spec, then escaped as a string value."""
    words = []
    for arg in args:
        arg = arg.replace("%", "%%")
        if any(c in _EXEC_RESERVED for c in arg):
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        words.append(arg)
    return " ".join(words).replace("\\", "\\\\")


def desktop_entry_text(exec_cmd: str | Sequence[str]) -> str:
    exec_line = exec_cmd if isinstance(exec_cmd, str) else exec_value(exec_cmd)
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=chatgui",
        "Name[zh_CN]=chatgui 聊天",
        "GenericName=AI Chat",
        "GenericName[zh_CN]=AI 聊天",
        "Comment=Chat with a language model that runs locally and offline",
        "Comment[zh_CN]=与在本机离线运行的语言模型聊天",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Utility;Chat;Network;",
        "Keywords=chat;AI;LLM;assistant;offline;local;",
        "Keywords[zh_CN]=聊天;人工智能;助手;离线;本地;",
        "StartupNotify=true",
        f"StartupWMClass={APP_ID}",
    ]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _refresh_caches() -> None:
    """Tell the desktop about the change, where its tools exist; any failure is harmless."""
    for cmd in (["update-desktop-database", "-q", str(data_home() / "applications")],
                ["gtk-update-icon-cache", "-q", "-t", "-f", str(data_home() / "icons" / "hicolor")]):
        if shutil.which(cmd[0]):
            try:
                subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass


def install(exec_cmd: str | Sequence[str] | None = None) -> list[Path]:
    """Write the desktop file and icons; exec_cmd is an Exec= string or an argument list
    (default: launch_command()). Returns the files written."""
    written = []
    for dest, src in icon_files().items():
        _write(dest, src.read_bytes())
        written.append(dest)
    desktop = desktop_file_path()
    _write(desktop, desktop_entry_text(exec_cmd or launch_command()).encode("utf-8"))
    desktop.chmod(0o755)  # some desktops only trust launchers that are executable
    written.append(desktop)
    _refresh_caches()
    return written


def uninstall() -> list[Path]:
    """Remove the files install() writes (nothing else). Returns the files removed."""
    removed = []
    for path in [desktop_file_path(), *icon_files()]:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    _refresh_caches()
    return removed


def _say(text: str, stream=None) -> None:
    stream = stream or sys.stdout
    if stream is not None:  # a windowed app may have no console at all
        print(text, file=stream)


def _run(action: str) -> int:
    if sys.platform in ("win32", "darwin"):
        _say("chatgui: desktop entries are for Linux and BSD desktops", sys.stderr)
        return 2
    try:
        paths = install() if action == "install" else uninstall()
    except OSError as e:
        _say(f"chatgui: could not {action} the desktop entry: {e}", sys.stderr)
        return 1
    verb = "installed" if action == "install" else "removed"
    _say(f"{verb} {desktop_file_path()}" if paths else "nothing to remove")
    return 0


def handle_cli(argv: Sequence[str]) -> int | None:
    """For the app's main(): the exit code when argv asks to (un)install the desktop entry, else None."""
    if INSTALL_FLAG in argv:
        return _run("install")
    if UNINSTALL_FLAG in argv:
        return _run("uninstall")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatgui.desktop_entry", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("install", "uninstall", "show"),
                        help="install or remove the menu entry, or print the desktop file it would write")
    args = parser.parse_args(argv)
    if args.action == "show":
        print(desktop_entry_text(launch_command()), end="")
        return 0
    return _run(args.action)


if __name__ == "__main__":
    raise SystemExit(main())

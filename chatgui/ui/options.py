"""Launch options from the command line and the environment (the command line wins)."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

FETCH_CHOICES = ("ask", "auto", "never")


@dataclass
class LaunchOptions:
    model: str | None = None     # a .gguf to load instead of the saved/default one
    device: str | None = None    # "auto", "cpu", "cuda"; None: the saved setting
    fetch: str = "ask"           # no model yet: "ask" offers the download, "auto" just does it, "never" doesn't


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def options_from_env(env=None) -> LaunchOptions:
    env = os.environ if env is None else env
    fetch = "ask"
    if _truthy(env.get("CHATGUI_AUTO_FETCH")):
        fetch = "auto"
    if _truthy(env.get("CHATGUI_NO_FETCH")):
        fetch = "never"
    device = (env.get("CHATGUI_DEVICE") or "").strip().lower() or None
    return LaunchOptions(model=(env.get("CHATGUI_MODEL") or "").strip() or None, device=device, fetch=fetch)


def parse_args(argv: list[str]) -> tuple[LaunchOptions, list[str]]:
    """Our options, and the rest of argv for Qt (e.g. -platform offscreen)."""
    parser = argparse.ArgumentParser(
        prog="chatgui", description="A desktop chatbot that runs a language model locally and offline.",
        epilog="Environment: CHATGUI_MODEL, CHATGUI_DEVICE, CHATGUI_NO_FETCH=1, CHATGUI_AUTO_FETCH=1, "
               "CHATGUI_DATA_DIR, CHATGUI_CONFIG_DIR, CHATGUI_LANG=en|zh_CN. `chatgui serve --help`: serve a model "
               "with the OpenAI chat API instead of opening the window.")
    parser.add_argument("--model", metavar="PATH", help="the .gguf model file to load")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to run the model")
    fetch = parser.add_mutually_exclusive_group()
    fetch.add_argument("--no-fetch", action="store_const", const="never", dest="fetch",
                       help="never download the default model")
    fetch.add_argument("--fetch", action="store_const", const="auto", dest="fetch",
                       help="download the default model without asking if no model is found")
    menu = parser.add_argument_group("desktop menu (Linux)")
    menu.add_argument("--install-desktop-entry", action="store_true", help="add chatgui to the application menu")
    menu.add_argument("--uninstall-desktop-entry", action="store_true", help="remove it from the menu")
    args, rest = parser.parse_known_args(argv)
    options = options_from_env()
    if args.model:
        options.model = args.model
    if args.device:
        options.device = args.device
    if args.fetch:
        options.fetch = args.fetch
    return options, rest

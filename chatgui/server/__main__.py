"""`python -m chatgui.server` (and the `chatgui-serve` script): see cli.py."""
from __future__ import annotations


def main(argv=None) -> int:
    from .cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())

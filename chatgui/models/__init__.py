"""Models chatgui can use: the catalog, downloads (resumable, verified, atomic), the models on this
machine, fit labels and display names. No Qt and no torch here: the UI and the CLI build on it."""
from __future__ import annotations

from .catalog import CatalogEntry, default_entry, get_entry, load_catalog
from .errors import (Cancelled, DiskFullError, HashMismatchError, ModelFetchError, OfflineError, Paused,
                     SourceUnreachable)
from .naming import display_name


def main(argv=None) -> int:
    """The chatgui-models script."""
    from .cli import main as cli_main
    return cli_main(argv)


__all__ = ["CatalogEntry", "Cancelled", "DiskFullError", "HashMismatchError", "ModelFetchError", "OfflineError",
           "Paused", "SourceUnreachable", "default_entry", "display_name", "get_entry", "load_catalog", "main"]

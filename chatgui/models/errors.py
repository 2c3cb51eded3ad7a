"""What can go wrong getting a model; every message is meant to be shown to the user as it is."""
from __future__ import annotations


class ModelFetchError(RuntimeError):
    """A model could not be fetched or added; str() says why and what to do."""


class SourceUnreachable(ModelFetchError):
    """This source could not be reached (offline, no such file, server error)."""


class DiskFullError(ModelFetchError):
    pass


class HashMismatchError(ModelFetchError):
    pass


class OfflineError(ModelFetchError):
    pass


class DownloadStopped(Exception):
    """Raised inside a download when the user paused or cancelled it."""


class Paused(DownloadStopped):
    pass


class Cancelled(DownloadStopped):
    pass

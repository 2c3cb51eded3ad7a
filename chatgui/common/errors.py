"""Errors any backend reports to the user (the local engine, a remote server)."""


class EngineError(Exception):
    """Base class for errors a backend reports to the user."""


class WordedError(EngineError):
    """An error whose text is already a whole sentence for the user (shown as it is): a remote
    server's failures (remote/errors.py)."""


class PromptTooLongError(EngineError):
    """The prompt does not fit the context even after dropping every older turn."""

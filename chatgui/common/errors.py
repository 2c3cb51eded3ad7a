"""Errors any backend reports to the user (the local engine, a remote server)."""


class EngineError(Exception):
    """Base class for errors a backend reports to the user."""


class PromptTooLongError(EngineError):
    """The prompt does not fit the context even after dropping every older turn."""

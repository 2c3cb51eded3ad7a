from chatgui.common.errors import EngineError, PromptTooLongError  # noqa: F401 - shared with the remote backend


class ModelLoadError(EngineError):
    """A model file could not be used. The message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot load model {self.path}: {reason}")


class TemplateError(EngineError):
    """The model's chat template failed, was refused by the sandbox, or hit a limit."""


class ModelFileChanged(EngineError):
    """The loaded model's file was rewritten in place (cp or a download over it): its mapped
    weights are no longer the ones loaded, and reading them could kill the process (SIGBUS)."""

    def __init__(self, path):
        self.path = str(path)
        super().__init__(f"The model file {self.path} changed on disk after it was loaded; load the model again.")

"""Why a reply failed, as a FailureKind and a sentence for the user.

The sentences are English source strings in the "EngineWorker" translation context: the window
passes its `translate` (chatgui.ui.common.i18n), which finds them in the .qm catalogue; without one
(tests, the server) they stay English. They are marked with QT_TRANSLATE_NOOP so that lupdate
extracts them from this Qt-free module.
"""
from __future__ import annotations

import sys
from typing import Callable

from chatgui.common.errors import PromptTooLongError, WordedError
from chatgui.common.records import ValueEnum
from chatgui.common.runner import NoBackend, ShuttingDown

Translate = Callable[[str, str], str]
CONTEXT = "EngineWorker"


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:   # noqa: N802 - the name lupdate looks for
    return text


def untranslated(_context: str, text: str) -> str:
    return text


class FailureKind(ValueEnum):
    NO_MODEL = "no_model"                  # nothing loaded (or closing): goes away once a model loads
    PROMPT_TOO_LONG = "prompt_too_long"    # the chat does not fit the context even without old turns
    MODEL_MISMATCH = "model_mismatch"      # a replay refused: another model file is loaded
    OOM = "oom"                            # the GPU ran out of memory
    ERROR = "error"                        # anything else

    @property
    def is_warning(self) -> bool:
        """Something the user can put right (a warning), not a fault (an error)."""
        return self in (FailureKind.PROMPT_TOO_LONG, FailureKind.NO_MODEL, FailureKind.MODEL_MISMATCH)


NO_MODEL_TEXT = QT_TRANSLATE_NOOP("EngineWorker", "No model is loaded. Choose a model file in the settings.")
NOT_STARTED_TEXT = QT_TRANSLATE_NOOP("EngineWorker", "The reply could not start: {error}")
OOM_TEXT = QT_TRANSLATE_NOOP("EngineWorker", "The GPU ran out of memory while writing the reply. Try a shorter chat, "
                                             "a smaller context length, or the CPU.")
FAILED_TEXT = QT_TRANSLATE_NOOP("EngineWorker", "The reply failed: {error}")
MISMATCH_TEXT = QT_TRANSLATE_NOOP("EngineWorker", "This reply was made with a different model file (sha256 {wanted}…) "
                                                  "than the one loaded now ({name}, sha256 {loaded}…), so replaying it "
                                                  "would not give the same answer. Load the model file it was made "
                                                  "with to replay it.")
KEPT_TEXT = QT_TRANSLATE_NOOP("ReplyController", "{message} Your message was kept: edit it, or start a new chat.")


class Refused(Exception):
    """A reply job refused before it began (e.g. a replay on another model file): its kind and words."""

    def __init__(self, kind: FailureKind, message: str):
        super().__init__(message)
        self.kind = kind


def model_mismatch_text(loaded_name: str, loaded_sha256: str, wanted_sha256: str,
                        translate: Translate = untranslated) -> str:
    return translate(CONTEXT, MISMATCH_TEXT).format(wanted=wanted_sha256[:12], name=loaded_name,
                                                    loaded=loaded_sha256[:12])


def is_out_of_memory(error: BaseException) -> bool:
    """torch's CUDA out-of-memory error (torch is only looked at if something loaded it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(error, torch.cuda.OutOfMemoryError)


def describe_failure(error: BaseException, started: bool,
                     translate: Translate = untranslated) -> tuple[FailureKind, str]:
    """What a reply job's error means for the user. `started`: the reply had begun (a failure
    before that is usually the chat template refusing the messages)."""
    if isinstance(error, Refused):
        return error.kind, str(error)
    if isinstance(error, (NoBackend, ShuttingDown)):
        return FailureKind.NO_MODEL, translate(CONTEXT, NO_MODEL_TEXT)
    if isinstance(error, WordedError):   # a server's 401/404/429/5xx, network, malformed stream
        return FailureKind.ERROR, str(error)
    if isinstance(error, PromptTooLongError):
        return FailureKind.PROMPT_TOO_LONG, str(error)
    if not started:
        return FailureKind.ERROR, translate(CONTEXT, NOT_STARTED_TEXT).format(error=error)
    if is_out_of_memory(error):
        return FailureKind.OOM, translate(CONTEXT, OOM_TEXT)
    return FailureKind.ERROR, translate(CONTEXT, FAILED_TEXT).format(error=f"{type(error).__name__}: {error}")


def failure_notice(kind: FailureKind, message: str, translate: Translate = untranslated) -> tuple[str, str, str]:
    """The window's notice for a failed reply: (key, "warning" or "error", text). "no-model" goes
    away by itself once a model has loaded."""
    if kind is FailureKind.PROMPT_TOO_LONG:
        message = translate("ReplyController", KEPT_TEXT).format(message=message)
    key = "no-model" if kind is FailureKind.NO_MODEL else "reply-error"
    return key, "warning" if kind.is_warning else "error", message

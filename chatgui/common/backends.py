"""The backend registry: every kind of backend the app can chat through, in the order the UI
offers them, with what it can do, how it is made and what its settings form asks for.

Callers look a kind up here (`backend_type(kind)`) and act on what the entry says; no code
outside this module compares kinds. A new backend kind (a server speaking another API) is its
BackendKind value (records.py), its backend class (a ChatBackend, common/backend.py) and one
entry below; the settings panel, the connect job and the saved settings follow from the entry.

Factories are named by "module:attribute" and imported when first used: this layer imports
nothing above it, and the remote backend's httpx loads only once a server is used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from chatgui.common.records import LOCAL_CAPABILITIES, REMOTE_CAPABILITIES, BackendKind, Capabilities
from chatgui.common.samplers import QT_TRANSLATE_NOOP

# Labels, placeholders and help are English; the backend panel translates them in the
# "BackendPanel" context (the marks are for pyside6-lupdate; no Qt here).


class FieldKind(Enum):
    URL = "url"          # a server address (a line edit)
    SECRET = "secret"    # an API key: shown as dots, kept in the OS keyring (remote/secrets.py), never in chats
    MODEL = "model"      # a model the server offers (a list filled from the server, editable)


@dataclass(frozen=True)
class FormField:
    """One entry of a backend's settings form; `name` is its key in AppSettings.backend and the
    keyword its factory takes."""
    name: str
    kind: FieldKind
    label: str
    placeholder: str = ""
    help: str = ""


@dataclass(frozen=True)
class BackendType:
    kind: BackendKind
    label: str                          # as the backend menu shows it (translated by the UI)
    help: str                           # the menu's tooltip for it (translated by the UI)
    capabilities: Capabilities          # what its backends offer (each backend also says so itself)
    form: tuple[FormField, ...] = ()    # () : nothing to fill in (the model group picks the file)
    # "module:attribute" of a callable(base_url=, model=, api_key=) -> a ChatBackend with
    # list_models(); None for the app's own engine, which the model controller loads from a file.
    factory: str | None = None

    @property
    def is_server(self) -> bool:
        """Replies come from another program over the network (connect, not load)."""
        return self.factory is not None

    def make(self) -> Callable[..., Any]:
        if self.factory is None:
            raise ValueError(f"the {self.kind.value} backend is loaded from a model file, not made")
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)

    def has_field(self, kind: FieldKind) -> bool:
        return any(f.kind is kind for f in self.form)


SERVER_FORM = (
    FormField("base_url", FieldKind.URL, "URL", "http://127.0.0.1:8000/v1"),
    FormField("api_key", FieldKind.SECRET, QT_TRANSLATE_NOOP("BackendPanel", "API key"),
              QT_TRANSLATE_NOOP("BackendPanel", "optional"),
              QT_TRANSLATE_NOOP("BackendPanel", "Kept in the system keyring when there is one, else only until "
                                                "chatgui closes; never in settings, chat files or exports.")),
    FormField("model", FieldKind.MODEL, QT_TRANSLATE_NOOP("BackendPanel", "Model"),
              QT_TRANSLATE_NOOP("BackendPanel", "the server's first model")),
)

BACKEND_TYPES: tuple[BackendType, ...] = (
    BackendType(BackendKind.LOCAL, QT_TRANSLATE_NOOP("BackendPanel", "Local model"),
                QT_TRANSLATE_NOOP("BackendPanel", "A GGUF model file run by chatgui on this computer."),
                LOCAL_CAPABILITIES),
    BackendType(BackendKind.OPENAI, QT_TRANSLATE_NOOP("BackendPanel", "OpenAI-compatible server"),
                QT_TRANSLATE_NOOP("BackendPanel", "A server that speaks the OpenAI chat API (vLLM, llama.cpp "
                                                  "server, Ollama, chatgui serve, a hosted API)."),
                REMOTE_CAPABILITIES, SERVER_FORM, "chatgui.remote.client:RemoteModel"),
)
_BY_KIND = {t.kind: t for t in BACKEND_TYPES}
DEFAULT_KIND = BackendKind.LOCAL


def backend_type(kind: BackendKind | str) -> BackendType:
    """The entry of a kind (or its saved value); KeyError/ValueError for one not registered."""
    return _BY_KIND[BackendKind(kind)]


def saved_kind(backend_settings: object) -> BackendKind:
    """The kind in AppSettings.backend; the default for a missing, unknown or unregistered one."""
    value = backend_settings.get("kind") if isinstance(backend_settings, dict) else None
    try:
        kind = BackendKind(value)
    except ValueError:
        return DEFAULT_KIND
    return kind if kind in _BY_KIND else DEFAULT_KIND

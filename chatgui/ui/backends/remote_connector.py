"""A server backend (any kind the registry makes with a factory, common/backends.py): list a
server's models, connect to one, go back to the local model.

Each of these runs as a job on the model runner (EngineClient.run), in turn with replies and
loads, so the backend in use never changes in the middle of a reply. A connected RemoteModel
then goes through the ordinary reply path; what it cannot do is in its `capabilities`.

Connecting lets go of the local model (a server answers now: its memory is the user's again);
going back to "Local model" loads the file again.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from chatgui.common.backends import backend_type
from chatgui.common.records import BackendKind

from chatgui.ui.backends.engine_client import EngineClient


def _make(kind: BackendKind, base_url: str, model: str | None, api_key: str):
    return backend_type(kind).make()(base_url=base_url, model=model, api_key=api_key or None)


class RemoteConnector(QObject):
    models_listed = Signal(int, object, str)   # request id, [model id, ...], error ("" if none)
    connected = Signal(object)                 # the server's ModelInfo
    connect_failed = Signal(str)               # a sentence for the user

    def __init__(self, engine: EngineClient, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.worker = engine.worker

    # -- from the GUI thread ---------------------------------------------------------------
    def list_models(self, request_id: int, kind: BackendKind, base_url: str, api_key: str) -> None:
        self.engine.run(lambda: self._list_models(request_id, kind, base_url, api_key))

    def connect_to(self, kind: BackendKind, base_url: str, api_key: str, model_name: str) -> None:
        self.engine.run(lambda: self._connect(kind, base_url, api_key, model_name))

    def use_local(self, path: str, device: str, context_length: int) -> None:
        self.engine.run(lambda: self._use_local(path, device, context_length))

    # -- jobs (on the runner thread) -------------------------------------------------------
    def _list_models(self, request_id: int, kind: BackendKind, base_url: str, api_key: str) -> None:
        from chatgui.remote import RemoteError
        try:
            models = _make(kind, base_url, None, api_key).list_models()
        except RemoteError as e:
            self.models_listed.emit(request_id, [], str(e))
            return
        except Exception as e:   # noqa: BLE001 - must reach the user, not kill the thread
            self.models_listed.emit(request_id, [], self.tr("Cannot list the server's models: {error}").format(
                error=f"{type(e).__name__}: {e}"))
            return
        self.models_listed.emit(request_id, models, "" if models else self.tr("The server offers no models."))

    def _connect(self, kind: BackendKind, base_url: str, api_key: str, model_name: str) -> None:
        from chatgui.remote import RemoteError
        try:
            model = _make(kind, base_url, model_name or None, api_key)
            offered = model.list_models()   # checks the address, the key and the model at once
            if not offered:
                raise RemoteError(self.tr("The server at {url} offers no models.").format(url=model.path))
            if not model.model:
                model.model = offered[0]
            elif model.model not in offered:
                raise RemoteError(self.tr("The server at {url} has no model “{model}”. It offers: {models}.")
                                  .format(url=model.path, model=model.model,
                                          models=", ".join(offered[:10]) + ("…" if len(offered) > 10 else "")))
        except RemoteError as e:
            self.connect_failed.emit(str(e))
            return
        except Exception as e:   # noqa: BLE001
            self.connect_failed.emit(self.tr("Cannot connect: {error}").format(error=f"{type(e).__name__}: {e}"))
            return
        self.worker.release_backend()   # the local model's memory is freed before the server is used
        self.worker.use_backend(model)
        self.connected.emit(model.info())

    def _use_local(self, path: str, device: str, context_length: int) -> None:
        """Back to the local model: load `path` again."""
        if path:
            self.worker.load(path, device, context_length)

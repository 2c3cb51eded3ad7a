"""The remote backend on the engine thread: list a server's models, connect to one, go back to
the local model.

RemoteConnector lives in the engine worker's thread (moved there by BackendController), so its
slots run in turn with the worker's own: setting `worker.model` here can never happen in the
middle of a reply. A connected RemoteModel then goes through the worker's ordinary generate
path; what differs (no token probabilities, no file hash, estimated token counts) is handled
there and in `remote_reply_meta` below.

Connecting keeps the local model in memory (as it was before), so that switching back to
"Local model" is instant; loading another local file lets go of it first.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from chatgui.ui.common.i18n import translate

OPENAI = "openai"
LOCAL = "local"


def make_remote_model(base_url: str, model: str | None, api_key: str | None):
    """A RemoteModel that also takes the keyword arguments the worker passes to a local model."""
    from chatgui.remote import RemoteError, RemoteModel

    class AppRemoteModel(RemoteModel):
        def generate(self, messages, settings=None, cancel=None, reply_prefix_ids=None, **_options):
            if reply_prefix_ids:
                raise RemoteError(translate("RemoteConnector", "Continuing a reply from a chosen token needs the "
                                            "local model: the OpenAI chat protocol cannot start a reply with given "
                                            "tokens."))
            generation = super().generate(messages, settings, cancel)
            generation.token_ids = ()   # the protocol sends text, not token ids
            return generation

    return AppRemoteModel(base_url, model or None, api_key or None)


def remote_info(model) -> dict:
    """What model_loaded says about a connected server (the same keys as for a local model)."""
    from chatgui.remote import public_backend_settings

    return {"name": model.name, "path": model.path, "device": "remote", "context_length": model.context_length,
            "token_probabilities": False,
            "backend": public_backend_settings({"kind": OPENAI, "base_url": model.path, "model": model.name})}


def remote_reply_meta(model, generation, meta: dict) -> dict:
    """A finished remote reply's meta: no model file (so nothing to hash and no path that looks
    like one), the server named instead, without any secret; token counts are the server's usage
    report (or the number of streamed chunks)."""
    from chatgui.remote import public_backend_settings

    meta = dict(meta)
    meta.pop("model_sha256", None)
    meta["model_path"] = None
    meta["tokens"] = generation.stats.generated_tokens
    meta["usage_reported"] = bool(generation.stats.extra.get("usage_reported"))
    meta["backend"] = public_backend_settings({"kind": OPENAI, "base_url": model.path, "model": model.name})
    return meta


class RemoteConnector(QObject):
    models_listed = Signal(int, object, str)   # request id, [model id, ...], error ("" if none)
    connected = Signal(object)                 # the model_loaded info
    connect_failed = Signal(str)               # a sentence for the user

    def __init__(self, worker):
        super().__init__()
        self.worker = worker
        self._local = None        # the local model while a server is in use
        worker.load_started.connect(self._forget_local)   # same thread: runs before the new load

    @Slot(int, str, str)
    def list_models(self, request_id: int, base_url: str, api_key: str) -> None:
        if self.worker.closing.is_set():
            return
        from chatgui.remote import RemoteError
        try:
            models = make_remote_model(base_url, None, api_key).list_models()
        except RemoteError as e:
            self.models_listed.emit(request_id, [], str(e))
            return
        except Exception as e:   # noqa: BLE001 - must reach the user, not kill the thread
            self.models_listed.emit(request_id, [], self.tr("Cannot list the server's models: {error}").format(
                error=f"{type(e).__name__}: {e}"))
            return
        self.models_listed.emit(request_id, models, "" if models else self.tr("The server offers no models."))

    @Slot(str, str, str)
    def connect_to(self, base_url: str, api_key: str, model_name: str) -> None:
        if self.worker.closing.is_set():
            return
        from chatgui.remote import RemoteError
        try:
            model = make_remote_model(base_url, model_name, api_key)
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
        current = self.worker.model
        if current is not None and str(getattr(current, "device", "")) != "remote":
            self._local = current
        self.worker.model = model
        info = remote_info(model)
        self.worker.model_loaded.emit(info)
        self.connected.emit(info)

    @Slot(str, str, int)
    def use_local(self, path: str, device: str, context_length: int) -> None:
        """Back to the local model: the one kept from before connecting, else load `path`."""
        if self.worker.closing.is_set():
            return
        kept = self._local
        if kept is not None and str(kept.path) == path:
            self._local = None
            self.worker.model = kept
            self.worker.model_loaded.emit({"name": kept.name, "path": str(kept.path), "device": str(kept.device),
                                           "context_length": kept.context_length})
        elif path:
            self.worker.load(path, device, context_length)

    def _forget_local(self, _path: str) -> None:
        self._local = None

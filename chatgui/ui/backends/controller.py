"""Which backend answers: the local model, or a server of a kind in the backend registry
(common/backends.py: what each kind is, asks for and is made by; this controller compares no
kinds); and serving the local model to other programs.

Settings: AppSettings.backend = {"kind": a BackendKind value, "base_url", "model", "serve_port"}.
The API key goes to the OS keyring (chatgui.remote.secrets.ApiKeys); where there is no keyring
service it is kept for this session only, and the panel says so in one line. Never in
settings.json (a key an older version put there is still read, and moved to the keyring), never
beside chats: message meta only ever gets public_backend_settings(...) (RemoteModel.info().backend).
The remote backend (httpx) and the keyring are imported only once they are used.
"""
from __future__ import annotations


from PySide6.QtCore import QObject, Signal

from chatgui.common.backends import DEFAULT_KIND, backend_type, saved_kind
from chatgui.common.records import BackendKind, ModelInfo
from chatgui.models.naming import display_name

from chatgui.ui.backends.panel import BackendPanel
from chatgui.ui.backends.remote_connector import RemoteConnector
from chatgui.ui.serve.toggle import ServeController, ServeGroup


class BackendController(QObject):
    settings_changed = Signal()   # AppSettings.backend changed: the window's SaveManager writes it

    def __init__(self, engine, settings, options, panel, status, notices, model_controller, parent=None):
        super().__init__(parent)
        self.engine, self.settings, self.options = engine, settings, options
        self.panel, self.status, self.notices, self.model_controller = panel, status, notices, model_controller
        self.active: BackendKind = DEFAULT_KIND   # what answers now (once a model is there)
        self._keys = None                          # ApiKeys, made on first use (imports keyring)
        self.local_path: str | None = None
        self._list_request = 0
        self._pending: dict | None = None   # the connection being made

        self.group = BackendPanel()
        self.serve_group = ServeGroup()
        panel.insert_group(0, self.group)
        panel.insert_group(2, self.serve_group)   # after the model group
        self.serve = ServeController(self.serve_group, status, settings, self)

        self.connector = RemoteConnector(engine, self)
        self.connector.models_listed.connect(self._on_models_listed)
        self.connector.connected.connect(self._on_connected)
        self.connector.connect_failed.connect(self._on_connect_failed)
        engine.worker.model_loaded.connect(self._on_model_loaded)
        engine.worker.load_failed.connect(self._on_load_failed)
        self.group.kind_chosen.connect(self._on_kind_chosen)
        self.group.refresh_requested.connect(self.refresh_models)
        self.group.connect_requested.connect(self.connect_to)

        backend = settings.backend if isinstance(settings.backend, dict) else {}
        settings.backend = backend
        url = str(backend.get("base_url") or "")
        self.group.set_remote(url, "", str(backend.get("model") or ""))
        self.group.set_kind(saved_kind(backend))

    # -- startup ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to the saved server, unless a model file was given on the command line; else
        what ModelController.start does (saved, default or downloaded local model)."""
        backend = self.settings.backend
        if backend_type(saved_kind(backend)).is_server and backend.get("base_url") and not self.options.model:
            key = self._load_key(backend["base_url"])
            self.group.set_key(key)
            self.connect_to(backend["base_url"], key, str(backend.get("model") or ""), saved_kind(backend))
        else:   # (a --model given for this run leaves the saved choice as it was)
            self.group.set_kind(DEFAULT_KIND)
            self.model_controller.start()

    # -- the server's model list -----------------------------------------------------------
    def refresh_models(self, base_url: str, api_key: str) -> None:
        if not self._check_url(base_url):
            return
        self._list_request += 1
        self.group.set_listing(True)
        self.group.set_state(self.tr("Asking the server for its models…"))
        self.connector.list_models(self._list_request, self.group.kind_choice(), base_url, api_key)

    def _on_models_listed(self, request_id: int, models: list, error: str) -> None:
        if request_id != self._list_request:
            return
        self.group.set_listing(False)
        if models:
            self.group.set_models(list(models))
            self.group.set_state((self.tr("The server offers 1 model. Choose it and press Connect.") if len(models) == 1
                                  else self.tr("The server offers {count} models. Choose one and press Connect."))
                                 .format(count=len(models)))
        else:
            self.group.set_state(error, error=True)

    # -- connecting ------------------------------------------------------------------------
    def connect_to(self, base_url: str, api_key: str, model: str, kind: BackendKind | None = None) -> None:
        kind = kind or self.group.kind_choice()
        if not self._check_url(base_url):
            return
        self._pending = {"kind": kind, "base_url": base_url, "api_key": api_key, "model": model}
        self.group.set_busy(True)
        self.group.set_state(self.tr("Connecting…"))
        if self.model_controller.loaded is None:
            self.model_controller.set_waiting("connect")   # a message sent now would find no model yet
        self.status.show_progress(self.tr("Connecting to {url}…").format(url=self._shown(base_url)))
        self.connector.connect_to(kind, base_url, api_key, model)

    def _on_connected(self, info: ModelInfo) -> None:
        pending, self._pending = self._pending or {}, None
        self.active = info.kind
        self.group.set_busy(False)
        self.group.set_kind(info.kind)
        self.group.put_model_first(info.name)
        self.group.set_state(self.tr("Connected: “{name}” at {url}. Replies come from this server; token "
                                     "probabilities are not available.").format(name=info.name, url=info.path))
        self.status.hide_progress(self.tr("Connected to {name} at {url}.").format(name=info.name, url=info.path))
        self.notices.remove("backend-error")
        backend = self.settings.backend
        backend.update({"kind": info.kind.value, "base_url": pending.get("base_url") or info.path,
                        "model": info.name})
        self._save_key(backend["base_url"], pending.get("api_key") or "")
        self._save_settings()

    def _on_connect_failed(self, message: str) -> None:
        self._pending = None
        if self.model_controller.waiting == "connect":
            self.model_controller.set_waiting(None)
        self.group.set_busy(False)
        self.group.set_state(message, error=True)
        self.status.hide_progress(self.tr("Could not connect to the server."))
        loaded = self.model_controller.loaded
        group = self.group
        actions = [(self.tr("Try again"), lambda: self.connect_to(group.url(), group.key(), group.model_choice()))]
        if loaded is not None:
            message = self.tr("{message} The previous model ({name}) is still in use.").format(
                message=message, name=loaded.name)
        if backend_type(self.active).is_server or loaded is None:
            actions.append((self.tr("Use the local model"), self.use_local))
        self.notices.show_notice("backend-error", message, "error", actions)

    # -- back to the local model -------------------------------------------------------------
    def use_local(self) -> None:
        self.notices.remove("backend-error")
        self.group.set_kind(DEFAULT_KIND)
        self.settings.backend["kind"] = DEFAULT_KIND.value
        self._save_settings()
        loaded = self.model_controller.loaded
        if loaded is not None and loaded.is_local:
            self.group.set_state("")
            return
        path = self.local_path or self.options.model or self.settings.model_path
        if path:
            self.group.set_state(self.tr("Back to the local model {name}.").format(name=display_name(path)))
            self.connector.use_local(path, self.panel.device_choice(), self.settings.context_length or 0)
        else:
            self.model_controller.start()

    def _on_kind_chosen(self, kind: BackendKind) -> None:
        if not backend_type(kind).is_server:
            self.use_local()
        elif self.active != kind:
            self.group.set_state(self.tr("Enter the server's address (and key, if it needs one), then Connect."))

    # -- from the worker -------------------------------------------------------------------
    def _on_model_loaded(self, info: ModelInfo) -> None:
        if info.is_local:
            was_remote, self.active = backend_type(self.active).is_server, info.kind
            self.local_path = info.path
            if was_remote:
                self.group.set_kind(info.kind)
                self.group.set_state("")
                self.settings.backend["kind"] = info.kind.value
        self.serve.model_changed(info)

    def _on_load_failed(self, _message: str) -> None:
        if backend_type(self.active).is_server:   # the server is still in use
            self.group.set_kind(self.active)

    # -- helpers ---------------------------------------------------------------------------
    def _check_url(self, base_url: str) -> bool:
        from chatgui.remote import RemoteError, normalize_base_url
        try:
            normalize_base_url(base_url)
        except RemoteError as e:
            self.group.set_state(str(e), error=True)
            return False
        return True

    @staticmethod
    def _shown(base_url: str) -> str:
        from chatgui.common.io import url_without_credentials
        return url_without_credentials(base_url)

    def _key_id(self, base_url: str) -> str:
        from chatgui.remote import normalize_base_url
        return normalize_base_url(base_url)

    @property
    def keys(self):
        if self._keys is None:
            from chatgui.remote.secrets import ApiKeys, system_keyring
            self._keys = ApiKeys(system_keyring())
        return self._keys

    def _load_key(self, base_url: str) -> str:
        legacy = self.settings.backend.get("api_key")
        if isinstance(legacy, str) and legacy:     # written into settings.json by an older version
            if self.keys.persistent and self.keys.save(self._key_id(base_url), legacy):
                del self.settings.backend["api_key"]
                self._save_settings()
            return legacy
        return self.keys.load(self._key_id(base_url))

    def _save_key(self, base_url: str, key: str) -> None:
        """The keyring when there is one, else this session only (and the panel says so)."""
        kept = self.keys.save(self._key_id(base_url), key)
        self.settings.backend.pop("api_key", None)   # never in settings.json from now on
        self.group.set_key_note("" if kept else self.tr(
            "No system keyring here: the API key is kept only until chatgui closes."))

    def _save_settings(self) -> None:
        self.settings_changed.emit()

    def shutdown(self) -> None:
        """Stop the server (the window is closing)."""
        self.serve.shutdown()

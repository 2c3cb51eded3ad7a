"""The "Backend" group of the settings dock: the kinds of the backend registry
(common/backends.py) in a list, and the form a server kind asks for (base URL, optional API key,
a model from the server's /v1/models). Which rows show follows the chosen kind's entry.

Only widgets and signals; BackendController does the work.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from chatgui.common.backends import BACKEND_TYPES, DEFAULT_KIND, FieldKind, backend_type
from chatgui.common.records import BackendKind
from chatgui.ui.common.named import named


class BackendPanel(QGroupBox):
    kind_chosen = Signal(object)              # a BackendKind, when the user picks one
    refresh_requested = Signal(str, str)      # base URL, API key
    connect_requested = Signal(str, str, str)  # base URL, API key, model ("" for the server's first)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle(self.tr("Backend"))
        self.setObjectName("backendGroup")
        column = QVBoxLayout(self)
        self.kind = named(QComboBox(), "backendCombo", self.tr("Backend"))
        for entry in BACKEND_TYPES:   # each kind's words are its registry entry's
            self.kind.addItem(self.tr(entry.label), entry.kind.value)
            self.kind.setItemData(self.kind.count() - 1, self.tr(entry.help), Qt.ItemDataRole.ToolTipRole)
        column.addWidget(self.kind)

        self.remote_box = QWidget()
        form = QFormLayout(self.remote_box)
        form.setContentsMargins(0, 0, 0, 0)
        self.base_url = named(QLineEdit(), "baseUrlEdit", self.tr("Server address"))
        self.api_key = named(QLineEdit(), "apiKeyEdit", self.tr("API key"))
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        # One line, shown only where there is no keyring service: the key will not be remembered.
        self.key_note = named(QLabel(""), "apiKeyNote", self.tr("Where the API key is kept"))
        self.key_note.setWordWrap(True)
        self.key_note.setVisible(False)
        self.remote_model = named(QComboBox(), "remoteModelCombo", self.tr("Server model"))
        self.remote_model.setEditable(True)
        # Long model names must neither widen the panel nor show only their tail.
        self.remote_model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.remote_model.setMinimumContentsLength(12)
        self.remote_model.currentTextChanged.connect(self._show_model_start)
        self.refresh_button = named(QPushButton(self.tr("Refresh")), "refreshModelsButton",
                                     self.tr("List the server's models"))
        model_row = QHBoxLayout()
        model_row.addWidget(self.remote_model, 1)
        model_row.addWidget(self.refresh_button)
        self.connect_button = named(QPushButton(self.tr("Connect")), "connectButton", self.tr("Connect to the server"))
        # Each row's label, placeholder and help come from the chosen kind's form (common/backends.py).
        self._labels = {kind: QLabel() for kind in FieldKind}
        form.addRow(self._labels[FieldKind.URL], self.base_url)
        form.addRow(self._labels[FieldKind.SECRET], self.api_key)
        form.addRow("", self.key_note)
        form.addRow(self._labels[FieldKind.MODEL], model_row)
        form.addRow("", self.connect_button)
        column.addWidget(self.remote_box)
        self._form = form
        self._rows = {FieldKind.URL: self.base_url, FieldKind.SECRET: self.api_key, FieldKind.MODEL: model_row}
        self._edits = {FieldKind.URL: self.base_url, FieldKind.SECRET: self.api_key,
                       FieldKind.MODEL: self.remote_model.lineEdit()}

        self.state = named(QLabel(""), "backendStateLabel", self.tr("Backend state"))
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.state)

        self.kind.activated.connect(lambda _i: self._kind_activated())
        self.refresh_button.clicked.connect(lambda: self.refresh_requested.emit(self.url(), self.key()))
        self.connect_button.clicked.connect(
            lambda: self.connect_requested.emit(self.url(), self.key(), self.model_choice()))
        self.set_kind(DEFAULT_KIND)

    # -- reading ---------------------------------------------------------------------------
    def kind_choice(self) -> BackendKind:
        return BackendKind(self.kind.currentData() or DEFAULT_KIND.value)

    def url(self) -> str:
        return self.base_url.text().strip()

    def key(self) -> str:
        return self.api_key.text().strip()

    def model_choice(self) -> str:
        return self.remote_model.currentText().strip()

    # -- showing ---------------------------------------------------------------------------
    def set_kind(self, kind: BackendKind) -> None:
        """Show a kind without announcing it (the user did not pick it)."""
        index = self.kind.findData(BackendKind(kind).value)
        self.kind.setCurrentIndex(max(index, 0))
        self._show_form()

    def set_remote(self, base_url: str, api_key: str, model: str) -> None:
        self.base_url.setText(base_url or "")
        self.api_key.setText(api_key or "")
        self.set_models([model] if model else [], model)

    def set_models(self, models: list[str], keep: str | None = None) -> None:
        """Fill the model list; keep the current choice if the server still offers it."""
        keep = self.model_choice() if keep is None else keep
        self.remote_model.clear()
        self.remote_model.addItems(models)
        if keep in models:
            self.remote_model.setCurrentIndex(models.index(keep))
        elif keep:
            self.remote_model.setEditText(keep)

    def set_key(self, api_key: str) -> None:
        self.api_key.setText(api_key)

    def put_model_first(self, name: str) -> None:
        """The connected model first in the list, chosen; the others the server offered after it."""
        others = [self.remote_model.itemText(i) for i in range(self.remote_model.count())]
        self.set_models([name] + [m for m in others if m != name], name)

    def set_listing(self, listing: bool) -> None:
        """While the server's model list is being fetched, Refresh waits."""
        self.refresh_button.setEnabled(not listing)

    def _show_model_start(self, text: str) -> None:
        self.remote_model.setToolTip(text)
        if not self.remote_model.lineEdit().hasFocus():
            self.remote_model.lineEdit().setCursorPosition(0)

    def set_state(self, text: str, error: bool = False) -> None:
        self.state.setText(text)
        self.state.setStyleSheet("color: #c0392b;" if error else "")

    def set_busy(self, busy: bool) -> None:
        self.refresh_button.setEnabled(not busy)
        self.connect_button.setEnabled(not busy)

    def set_key_note(self, text: str) -> None:
        self.key_note.setText(text)
        self.key_note.setVisible(bool(text))

    def _show_form(self) -> None:
        entry = backend_type(self.kind_choice())
        self.kind.setToolTip(self.tr(entry.help))
        self.remote_box.setVisible(bool(entry.form))
        for field_kind, row in self._rows.items():
            self._form.setRowVisible(row, entry.has_field(field_kind))
        for field in entry.form:
            self._labels[field.kind].setText(self.tr(field.label))
            self._edits[field.kind].setPlaceholderText(self.tr(field.placeholder))
            self._edits[field.kind].setToolTip(self.tr(field.help) if field.help else "")
        self.connect_button.setVisible(entry.is_server)

    def _kind_activated(self) -> None:
        self._show_form()
        self.kind_chosen.emit(self.kind_choice())

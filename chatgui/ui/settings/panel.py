"""The settings side panel: the model picker (options folded), system prompt, sampling preset (the
fields folded under Advanced: one per field of the sampler registry, common/samplers.py, in its
order, then the reply's length, seed and JSON mode). Changes apply to the next reply; the model
is reloaded only when the user picks another one or presses Load."""
from __future__ import annotations

import json

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea, QSpinBox,
                               QVBoxLayout, QWidget)

from chatgui.common.samplers import SAMPLER_FIELDS, SamplerField
from chatgui.common.types import PRESETS, SamplingSettings
from chatgui.engine.native import kernels_missing as native_kernels_missing
from chatgui.models.naming import display_name

from chatgui.ui.common.elided_combo import ElidedComboBox
from chatgui.ui.common.fold import FoldSection
from chatgui.ui.common.i18n import preset_label, translate
from chatgui.ui.common.named import named
from chatgui.ui.common.wheel_guard import guard_wheel

DEVICE_LABELS = {"auto": QT_TRANSLATE_NOOP("SettingsPanel", "Auto"), "cpu": "CPU", "cuda": "CUDA"}
PRESET_FIELDS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty")
CUSTOM = "Custom"   # a preset's data key (shown translated, see i18n.preset_label)
BROWSE = "\0browse"   # the picker's last item
EXTRA_ROLE = Qt.ItemDataRole.UserRole + 1   # marks a picker item for a file that is not installed


def installed_models() -> list[tuple[str, str]]:
    """(display name, path) of the chat models on this computer (the models folder and files added
    in place), as the Models page lists them; embedding models are for Knowledge, not the picker."""
    from chatgui.models.library import installed_models as on_this_computer
    return [(m.name, str(m.path)) for m in on_this_computer() if m.entry is None or not m.entry.is_embedding]


def _double(name: str, label: str, lo: float, hi: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    box = named(QDoubleSpinBox(), name, label)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


def _int(name: str, label: str, lo: int, hi: int, step: int = 1) -> QSpinBox:
    box = named(QSpinBox(), name, label)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    return box


PREFERRED_WIDTH = 330   # where the window has room; its rows wrap down to ~240 px where it has not


class PanelScroll(QScrollArea):
    """The panel's scroll area asks for PREFERRED_WIDTH: with rows that wrap, the body's own wish
    would be its narrowest, too cramped where the window has room."""

    def sizeHint(self):   # noqa: N802 (Qt override)
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), PREFERRED_WIDTH))
        return hint


def wrap_long_rows(widget: QWidget) -> None:
    """Every form under `widget` puts a field under its label when the two do not fit side by
    side, so a narrow panel (~240 px at a 900 px window) asks for no more than its widest field."""
    for form in widget.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)


class SettingsPanel(QDockWidget):
    load_model_requested = Signal(str, str, int)   # path, device, context length (0: the model's)
    default_model_requested = Signal()
    models_requested = Signal()          # the Models page (catalog, downloads)
    clear_cache_requested = Signal()     # delete the repacked-weight cache
    system_prompt_edited = Signal(str)
    default_system_prompt_set = Signal(str)
    sampling_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.tr("Settings"))
        self.setObjectName("settingsPanel")
        self.setAccessibleName(self.tr("Settings"))
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        # List-of-strings fields: their last valid value (the text may be mid-edit).
        self._strings = {f.name: f.default for f in SAMPLER_FIELDS if f.kind is tuple}
        body = QWidget()
        column = QVBoxLayout(body)
        self.model_group = self._model_group()
        self._local_only: list[QWidget] = [self.model_group]   # hidden while a server answers
        column.addWidget(self.model_group)
        column.addWidget(self._prompt_group())
        column.addWidget(self._sampling_group())
        column.addStretch(1)
        self._column = column
        wrap_long_rows(body)
        scroll = PanelScroll()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self._updating = False
        self.set_sampling(SamplingSettings(), random_seed=True)
        guard_wheel(self)

    # -- building --------------------------------------------------------------------------
    def _model_group(self) -> QGroupBox:
        """The model picker on top (installed models and Browse…); the file, device and context
        length folded under "Model options"."""
        group = QGroupBox(self.tr("Model"))
        column = QVBoxLayout(group)
        self.model_combo = named(ElidedComboBox(), "modelCombo", self.tr("Model"))
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(8)   # a longer name is elided (tooltip: the whole name)
        browse = named(QPushButton(self.tr("Browse…")), "browseModelButton", self.tr("Choose a model file"))
        # The picker on a line of its own, its buttons under it: side by side they made the panel
        # ~300 px wide at least, which a 900 px window could not spare the chat.
        column.addWidget(self.model_combo)
        picker = QHBoxLayout()
        picker.addWidget(browse)
        models = named(QPushButton(self.tr("Models…")), "modelsButton",
                        self.tr("Download a model from the catalog, or manage the ones on this computer"))
        models.setToolTip(self.tr("Download a model from the catalog, or manage the ones on this computer"))
        models.clicked.connect(self.models_requested)
        picker.addWidget(models)
        picker.addStretch(1)
        column.addLayout(picker)

        options = QWidget()
        form = QFormLayout(options)
        form.setContentsMargins(0, 0, 0, 0)
        self.model_path = named(QLineEdit(), "modelPathEdit", self.tr("Model file"))
        self.model_path.setPlaceholderText(self.tr("a .gguf file"))
        default = named(QPushButton(self.tr("Default model")), "defaultModelButton", self.tr("Use the default model"))
        self.device = named(QComboBox(), "deviceCombo", self.tr("Device"))
        self.set_available_devices(["auto", "cpu"])
        self.context_length = _int("contextLengthSpin", self.tr("Context length"), 0, 1 << 20, 256)
        self.context_length.setSpecialValueText(self.tr("Automatic"))
        self.context_length.setToolTip(self.tr("Context length in tokens. Automatic: the model's own, at most 4,096 "
                                               "(each token of context takes memory); enter a number to use more."))
        self.load_button = named(QPushButton(self.tr("Load model")), "loadModelButton", self.tr("Load model"))
        row = QHBoxLayout()
        row.addWidget(default)
        row.addStretch(1)
        row.addWidget(self.load_button)
        form.addRow(self.tr("File"), self.model_path)
        form.addRow(self.tr("Device"), self.device)
        form.addRow(self.tr("Context"), self.context_length)
        form.addRow(row)
        self.cache_label = named(QLabel(), "weightCacheLabel", self.tr("Weight cache"))
        self.cache_label.setToolTip(self.tr("Quantized weights repacked for this computer, kept so that a model "
                                            "loads faster the next time. Safe to clear: it is made again."))
        clear_cache = named(QPushButton(self.tr("Clear")), "clearCacheButton", self.tr("Clear the weight cache"))
        clear_cache.clicked.connect(self.clear_cache_requested)
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.cache_label, 1)
        cache_row.addWidget(clear_cache)
        form.addRow(self.tr("Cache"), cache_row)
        if native_kernels_missing():       # one plain line where the CPU runs the slower PyTorch kernels
            self.kernels_note = named(QLabel(self.tr("Fast CPU kernels are not installed (no C compiler when "
                                                      "chatgui was installed): models run slower on the CPU.")),
                                       "kernelsNote", self.tr("Fast CPU kernels"))
            self.kernels_note.setWordWrap(True)
            form.addRow(self.kernels_note)
        self.model_options = FoldSection(self.tr("Model options"), options, "modelOptions")
        column.addWidget(self.model_options)
        browse.clicked.connect(self._browse)
        default.clicked.connect(self.default_model_requested)
        self.load_button.clicked.connect(self._request_load)
        self.model_combo.activated.connect(self._model_picked)
        self.model_path.textChanged.connect(self._show_model_in_combo)
        self.set_installed_models(installed_models())
        return group

    def _prompt_group(self) -> QGroupBox:
        group = QGroupBox(self.tr("System prompt (this chat)"))
        column = QVBoxLayout(group)
        self.system_prompt = named(QPlainTextEdit(), "systemPromptEdit", self.tr("System prompt"))
        self.system_prompt.setPlaceholderText(self.tr("e.g. You are a helpful assistant."))
        self.system_prompt.setMaximumHeight(90)
        make_default = named(QPushButton(self.tr("Use for new chats")), "defaultSystemPromptButton",
                              self.tr("Use this system prompt for new chats"))
        column.addWidget(self.system_prompt)
        column.addWidget(make_default, 0, Qt.AlignmentFlag.AlignRight)
        self.system_prompt.textChanged.connect(
            lambda: self._updating or self.system_prompt_edited.emit(self.system_prompt.toPlainText()))
        make_default.clicked.connect(lambda: self.default_system_prompt_set.emit(self.system_prompt.toPlainText()))
        return group

    def _sampling_group(self) -> QGroupBox:
        group = QGroupBox(self.tr("Sampling (next reply)"))
        self.preset = named(QComboBox(), "presetCombo", self.tr("Preset"))
        for name in (CUSTOM, *PRESETS):
            self.preset.addItem(preset_label(name), name)
        reset = named(QPushButton(self.tr("Reset")), "resetSamplingButton", self.tr("Reset sampling settings"))
        row = QHBoxLayout()
        row.addWidget(self.preset, 1)
        row.addWidget(reset)
        self.sampler_widgets = {f.name: self._sampler_widget(f) for f in SAMPLER_FIELDS}
        self.max_new_tokens = _int("maxNewTokensSpin", self.tr("Maximum new tokens"), 1, 1 << 20, 64)
        self.random_seed = named(QCheckBox(self.tr("Random")), "randomSeedCheck", self.tr("Random seed"))
        self.seed = _int("seedSpin", self.tr("Seed"), 0, 2**31 - 1)
        self.json_reply = named(QCheckBox(self.tr("Reply as JSON")), "jsonReplyCheck", self.tr("Reply as JSON"))
        self.json_reply.setToolTip(self.tr("The reply is always a JSON object that parses (the model is only "
                                           "allowed tokens that keep it valid JSON)"))
        self.random_seed.setToolTip(self.tr("A new seed for every reply; untick to repeat a reply exactly"))
        top = QFormLayout()
        top.addRow(self.tr("Preset"), row)
        fields = QWidget()
        form = QFormLayout(fields)
        form.setContentsMargins(0, 0, 0, 0)
        for f in SAMPLER_FIELDS:     # the registry's order, which is the order they apply in
            form.addRow(translate("SettingsPanel", f.label), self.sampler_widgets[f.name])
        form.addRow(self.tr("Max new tokens"), self.max_new_tokens)
        # the seed and its Random box on two rows: side by side they were the panel's widest row
        form.addRow(self.tr("Seed"), self.seed)
        form.addRow("", self.random_seed)
        form.addRow("", self.json_reply)
        column = QVBoxLayout(group)
        column.addLayout(top)
        self.advanced = FoldSection(self.tr("Advanced"), fields, "advancedSampling")
        column.addWidget(self.advanced)
        self.preset.activated.connect(lambda _i: self.apply_preset(self.preset.currentData()))
        reset.clicked.connect(lambda: self.set_sampling(SamplingSettings(), random_seed=True))
        for box in (self.max_new_tokens, self.seed):
            box.valueChanged.connect(self._sampling_edited)
        self.random_seed.toggled.connect(self._sampling_edited)
        self.json_reply.toggled.connect(self._sampling_edited)
        return group

    def _sampler_widget(self, f: SamplerField) -> QWidget:
        """The field of a sampler setting (common/samplers.py), also reachable as panel.<name>."""
        label, help_text = translate("SettingsPanel", f.label), translate("SettingsPanel", f.help)
        camel = "".join(w[:1].upper() + w[1:] for w in f.name.split("_"))
        widget: QWidget
        if f.kind is tuple:
            widget = named(QLineEdit(), camel[:1].lower() + camel[1:] + "Edit", label)
            widget.textEdited.connect(lambda _text, w=widget, f=f: self._strings_edited(w, f))
        elif f.kind is int:
            widget = _int(camel[:1].lower() + camel[1:] + "Spin", label, int(f.lo), int(f.hi), max(1, int(f.step)))
            widget.valueChanged.connect(self._sampling_edited)
        else:
            widget = _double(camel[:1].lower() + camel[1:] + "Spin", label, f.lo, f.hi, f.step, f.decimals)
            widget.valueChanged.connect(self._sampling_edited)
        widget.setToolTip(help_text)
        widget.setProperty("help", help_text)
        setattr(self, f.name, widget)
        return widget

    def _strings_edited(self, widget: QLineEdit, f: SamplerField) -> None:
        """A list-of-strings field is edited as JSON: a value only while it parses as one."""
        try:
            value = f.check(json.loads(widget.text()))
        except ValueError:
            widget.setStyleSheet("QLineEdit { border: 1px solid #d9534f; }")
            widget.setToolTip(self.tr("Not a JSON list of strings (e.g. [\"\\n\", \":\"]); the last valid list "
                                      "is used"))
            return
        widget.setStyleSheet("")
        widget.setToolTip(widget.property("help"))
        self._strings[f.name] = value
        self._sampling_edited()

    def mark_local_only(self, widget: QWidget) -> None:
        """A section that only matters for the local model (hidden while a server answers)."""
        self._local_only.append(widget)

    def show_local_sections(self, on: bool) -> None:
        for widget in self._local_only:
            widget.setVisible(on)

    def show_model_context(self, info) -> None:
        """Say what "Automatic" came to for the loaded model (a ModelInfo)."""
        count = info.context_length
        if info.is_local and count > 0:
            self.context_length.setSpecialValueText(self.tr("Automatic ({count} tokens)").format(count=count))

    def insert_group(self, index: int, group: QWidget) -> None:
        """Add a group made elsewhere (e.g. the backend choice) at this place in the dock."""
        self._column.insertWidget(index, group)
        wrap_long_rows(group)
        guard_wheel(self)

    # -- model -----------------------------------------------------------------------------
    def set_model(self, path: str | None, device: str, context_length: int | None) -> None:
        self.model_path.setText(path or "")
        index = self.device.findData(device)
        if index < 0:   # e.g. "cuda" saved, but not known to be present yet
            self.device.addItem(self.tr(DEVICE_LABELS.get(device, device)), device)
            index = self.device.count() - 1
        self.device.setCurrentIndex(index)
        self.context_length.setValue(context_length or 0)

    def set_installed_models(self, models: list[tuple[str, str]]) -> None:
        """Fill the picker: (shown name, path) of the models on this computer (the Models page
        may call this with its own list), then "Browse…"."""
        current = self.model_path.text() if hasattr(self, "model_path") else ""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for name, path in models:
            self.model_combo.addItem(name, path)
            self.model_combo.setItemData(self.model_combo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.addItem(self.tr("Browse…"), BROWSE)
        self.model_combo.blockSignals(False)
        self._show_model_in_combo(current)

    def _show_model_in_combo(self, path: str) -> None:
        """Select `path` in the picker; a file that is not installed (chosen with Browse…) is
        listed on top, by its display name, while it is the one shown: showing another drops it."""
        path = path.strip()
        for i in reversed(range(self.model_combo.count())):
            if self.model_combo.itemData(i, EXTRA_ROLE) and self.model_combo.itemData(i) != path:
                self.model_combo.removeItem(i)
        index = self.model_combo.findData(path) if path else -1
        if index < 0 and path:
            self.model_combo.insertItem(0, display_name(path), path)
            self.model_combo.setItemData(0, path, Qt.ItemDataRole.ToolTipRole)
            self.model_combo.setItemData(0, True, EXTRA_ROLE)
            index = 0
        self.model_combo.blockSignals(True)
        self.model_combo.setCurrentIndex(index)
        self.model_combo.blockSignals(False)
        self.model_combo.setToolTip(f"{self.model_combo.currentText()}\n{path}" if path else "")

    def _model_picked(self, index: int) -> None:
        path = self.model_combo.itemData(index)
        if path == BROWSE:
            self._show_model_in_combo(self.model_path.text())
            self._browse()
        elif path and path != self.model_path.text():
            self.model_path.setText(path)
            self._request_load()

    def set_available_devices(self, devices: list[str]) -> None:
        current = self.device.currentData() or "auto"
        self.device.clear()
        for d in devices:
            self.device.addItem(self.tr(DEVICE_LABELS.get(d, d)), d)
        index = self.device.findData(current)
        self.device.setCurrentIndex(max(index, 0))

    def device_choice(self) -> str:
        return self.device.currentData() or "auto"

    def show_cache_size(self, size: int) -> None:
        self.cache_label.setText(self.tr("{size} MB on disk").format(size=f"{size / 1e6:,.0f}"))

    def context_length_choice(self) -> int | None:
        """None: the model's own context length."""
        return self.context_length.value() or None

    def show_model_path(self, path: str) -> None:
        """Show the file in use again (after another one failed to load)."""
        self.model_path.setText(path)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Choose a model"), self.model_path.text(),
                                              self.tr("GGUF models (*.gguf)"))
        if path:
            self.model_path.setText(path)
            self._request_load()

    def _request_load(self) -> None:
        path = self.model_path.text().strip()
        if path:
            self.load_model_requested.emit(path, self.device_choice(), self.context_length.value())

    # -- system prompt ---------------------------------------------------------------------
    def set_system_prompt(self, text: str) -> None:
        self._updating = True
        try:
            self.system_prompt.setPlainText(text)
        finally:
            self._updating = False

    # -- sampling --------------------------------------------------------------------------
    def sampling(self) -> SamplingSettings:
        values = {f.name: self._strings[f.name] if f.kind is tuple else self.sampler_widgets[f.name].value()
                  for f in SAMPLER_FIELDS}
        return SamplingSettings(**values, max_new_tokens=self.max_new_tokens.value(),
                                seed=None if self.random_seed.isChecked() else self.seed.value(),
                                json_reply=self.json_reply.isChecked())

    def uses_random_seed(self) -> bool:
        return self.random_seed.isChecked()

    def use_random_seed(self) -> None:
        self.random_seed.setChecked(True)

    def set_sampling(self, s: SamplingSettings, random_seed: bool) -> None:
        self._updating = True
        try:
            for name, value in s.sampler_values().items():
                widget = self.sampler_widgets[name]
                if isinstance(widget, QLineEdit):
                    self._strings[name] = tuple(value)
                    widget.setText(json.dumps(list(value), ensure_ascii=False))
                    widget.setStyleSheet("")
                    widget.setToolTip(widget.property("help"))
                else:
                    widget.setValue(value)
            self.max_new_tokens.setValue(s.max_new_tokens)
            self.random_seed.setChecked(random_seed or s.seed is None)
            self.seed.setValue(s.seed if s.seed is not None else self.seed.value())
            self.json_reply.setChecked(s.json_reply)
        finally:
            self._updating = False
        self._sampling_edited()   # once for all the fields, not once per field

    def apply_preset(self, name: str) -> None:
        preset = PRESETS.get(name)
        if preset is None:
            return
        current = self.sampling()
        changes = {f: getattr(preset, f) for f in PRESET_FIELDS}
        self.set_sampling(current.with_(**changes), random_seed=self.random_seed.isChecked())

    def _sampling_edited(self, *_):
        self.seed.setEnabled(not self.random_seed.isChecked())
        s = self.sampling()
        match = next((name for name, p in PRESETS.items()
                      if all(abs(getattr(p, f) - getattr(s, f)) < 1e-9 for f in PRESET_FIELDS)), CUSTOM)
        self.preset.setCurrentIndex(max(self.preset.findData(match), 0))
        if not self._updating:
            self.sampling_changed.emit()

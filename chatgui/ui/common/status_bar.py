"""The status bar: model, device, context use, speed of the last reply, and progress."""
from __future__ import annotations


from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar


def _label(name: str, accessible: str, text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setAccessibleName(accessible)
    return label


class StatusBar(QStatusBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.setAccessibleName(self.tr("Status"))
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setAccessibleName(self.tr("Progress"))
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.model_label = _label("modelLabel", self.tr("Model"), self.tr("No model"))
        self.device_label = _label("deviceLabel", self.tr("Device"))
        self.context_label = _label("contextLabel", self.tr("Context used"))
        self.speed_label = _label("speedLabel", self.tr("Speed of the last reply"))
        self.addPermanentWidget(self.progress)
        for label in (self.model_label, self.device_label, self.context_label, self.speed_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)
        self._context_max = 0
        self._approximate = False

    def set_model(self, info) -> None:
        """Show the loaded model (a ModelInfo). A server's path is its URL, its token counts estimated."""
        name, device, context_length, path = info.name, info.device, info.context_length, info.path
        remote = not info.is_local
        self.model_label.setText(name)   # the one display name (chatgui.models.display_name)
        self.model_label.setToolTip(f"{name}\n{path}" if path else name)
        self.device_label.setText(self.tr("Remote") if remote else device.upper() if device == "cpu"
                                  else device.replace("cuda", "CUDA"))
        self.device_label.setToolTip(self.tr("Replies come from the server at {url}").format(url=path)
                                     if remote else "")
        self._context_max = context_length or 0
        self._approximate = not info.capabilities.exact_token_counts
        self.context_label.setText(self.tr("Context: – / {max}").format(max=context_length) if context_length
                                   else self.tr("Context: ≈–"))

    def set_context_used(self, used: int) -> None:
        if self._context_max:
            self.context_label.setText(self.tr("Context: {used} / {max}").format(used=used, max=self._context_max))
        elif self._approximate and used > 0:
            self.context_label.setText(self.tr("Context: ≈{used} tokens").format(used=used))

    def set_speed(self, time_to_first_token: float, tokens_per_second: float) -> None:
        if tokens_per_second > 0:
            self.speed_label.setText(self.tr("First token {seconds} s · {speed} tok/s").format(
                seconds=f"{time_to_first_token:.2f}", speed=f"{tokens_per_second:.1f}"))
        elif time_to_first_token > 0:   # a reply of one token, or stopped at once: no speed to say
            self.speed_label.setText(self.tr("First token {seconds} s").format(seconds=f"{time_to_first_token:.2f}"))

    def show_batch_progress(self, text: str, fraction: float) -> None:
        """Several answers written at once (ReplyController.batch_progress); "" when they are done."""
        if text:
            self.show_progress(text, fraction)
        else:
            self.hide_progress()

    def show_progress(self, text: str, fraction: float | None = None) -> None:
        """fraction None: busy without a known end (a model load)."""
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.show()
        self.showMessage(text)

    def hide_progress(self, text: str = "", timeout_ms: int = 5000) -> None:
        self.progress.hide()
        if text:
            self.showMessage(text, timeout_ms)
        else:
            self.clearMessage()

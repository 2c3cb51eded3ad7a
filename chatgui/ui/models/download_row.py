"""One download's progress: MB, %, speed, time left, and Pause / Resume / Cancel."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from chatgui.models.transfer import Progress
from chatgui.ui.common.i18n import translate


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def time_left(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 3600} h {s // 60 % 60:02d} min" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_text(p: Progress) -> str:
    """'34 / 98 MB · 35% · 5.1 MB/s · 0:13 left', or what the stage is (waiting, checking, installing)."""
    frac = p.fraction or 0.0
    if p.stage == "waiting":
        return translate("DownloadRow", "Waiting for another download of this model…")
    if p.stage == "verify":
        return translate("DownloadRow", "Checking the file… {0}%").format(f"{frac * 100:.0f}")
    if p.stage == "install":
        return translate("DownloadRow", "Installing…")
    return translate("DownloadRow", "{0} / {1} · {2}% · {3} MB/s · {4} left").format(
        f"{p.done / 1e6:,.0f}", mb(p.total) if p.total else "?", f"{frac * 100:.0f}", f"{p.speed / 1e6:.1f}",
        time_left(p.eta))


class DownloadRow(QWidget):
    pause_clicked = Signal()
    resume_clicked = Signal()
    cancel_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.label = QLabel()
        self.label.setObjectName("downloadText")
        self.pause_button = QPushButton(self.tr("Pause"))
        self.resume_button = QPushButton(self.tr("Resume"))
        self.cancel_button = QPushButton(self.tr("Cancel"))
        for w, stretch in ((self.bar, 1), (self.label, 0), (self.pause_button, 0), (self.resume_button, 0),
                           (self.cancel_button, 0)):
            row.addWidget(w, stretch)
        self.pause_button.clicked.connect(self.pause_clicked)
        self.resume_button.clicked.connect(self.resume_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.resume_button.hide()

    def show_progress(self, p: Progress) -> None:
        self._swap(self.resume_button, self.pause_button)
        self.bar.setValue(int((p.fraction or 0.0) * 1000))
        self.label.setText(progress_text(p))

    def _swap(self, going, coming) -> None:
        """Pause and Resume take each other's place; the keyboard focus goes with them (hiding
        the focused button would hand the focus to the next one, Cancel, and a second Space
        would cancel the download)."""
        had_focus = going.hasFocus()
        coming.show()
        if had_focus:
            coming.setFocus(Qt.FocusReason.OtherFocusReason)
        going.hide()

    def show_paused(self, done: int, total: int | None) -> None:
        self._swap(self.pause_button, self.resume_button)
        if total:
            self.bar.setValue(int(done / total * 1000))
            self.label.setText(self.tr("Paused at {0} of {1}").format(mb(done), mb(total)))
        else:
            self.label.setText(self.tr("Paused at {0}").format(mb(done)))

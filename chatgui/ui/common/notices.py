"""Non-modal notices above the conversation: errors, problems with files, the first-run offer.

Nothing here blocks, and notices never pile up: at most MAX_SHOWN are on screen, the most severe
first (errors, then warnings, then information; the newest first within a kind), so an error never
waits behind information; another comes back when one of them goes. Errors and warnings stay until
dismissed or replaced; information goes by itself after a while (not while the pointer is on it),
also while it waits unseen, except a notice that cannot be closed (something under way, e.g. a download).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QT_TRANSLATE_NOOP, Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

MAX_SHOWN = 2
SEVERITY = {"error": 0, "warning": 1, "info": 2}   # which notices are shown first when more wait
INFO_TIMEOUT_MS = 8000          # information without buttons: long enough to read two lines twice
ACTION_TIMEOUT_MS = 20000       # information with a button (Undo, Restart now): time to decide

# Accent colours for the left edge only; they read well on light and dark backgrounds alike.
ACCENTS = {"info": "#3b82f6", "warning": "#d97706", "error": "#dc2626"}
KIND_NAMES = {"info": QT_TRANSLATE_NOOP("Notice", "Information notice"),
              "warning": QT_TRANSLATE_NOOP("Notice", "Warning notice"),
              "error": QT_TRANSLATE_NOOP("Notice", "Error notice")}


class Notice(QFrame):
    def __init__(self, key: str, text: str, kind: str, actions, closable: bool, parent=None):
        super().__init__(parent)
        self.key = key
        self.kind = kind
        self.setObjectName(f"notice-{key}")
        self.setAccessibleName(self.tr(KIND_NAMES.get(kind, KIND_NAMES["info"])))
        self.setProperty("kind", kind)
        self.setStyleSheet(f"QFrame#notice-{key} {{ background: palette(alternate-base); "
                           f"border: 1px solid palette(mid); border-left: 4px solid {ACCENTS.get(kind, ACCENTS['info'])};"
                           " border-radius: 4px; }")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(text)
        self.label.setObjectName("noticeText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)   # messages may quote file names or model output
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.label, 1)
        self.buttons: dict[str, QPushButton] = {}
        for caption, callback in actions:
            button = QPushButton(caption)
            button.clicked.connect(callback)
            row.addWidget(button)
            self.buttons[caption] = button
        if closable:
            close = QToolButton()
            close.setText("✕")
            close.setAutoRaise(True)
            close.setToolTip(self.tr("Dismiss"))
            close.setAccessibleName(self.tr("Dismiss"))
            close.clicked.connect(self.dismiss)
            row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

        self.timer: QTimer | None = None
        if kind == "info" and closable:
            self.timer = QTimer(self, singleShot=True,
                                interval=ACTION_TIMEOUT_MS if actions else INFO_TIMEOUT_MS)
            self.timer.timeout.connect(self.dismiss)
            self.timer.start()

    def text(self) -> str:
        return self.label.text()

    def enterEvent(self, event):   # noqa: N802 (Qt override): not while it is being read or clicked
        super().enterEvent(event)
        if self.timer is not None:
            self.timer.stop()

    def leaveEvent(self, event):   # noqa: N802 (Qt override)
        super().leaveEvent(event)
        if self.timer is not None:
            self.timer.start()

    def dismiss(self) -> None:
        self.hide()
        self.deleteLater()
        area = self.parent()
        if isinstance(area, NoticeArea):
            area.forget(self)


class NoticeArea(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("noticeArea")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 6, 12, 0)
        self._layout.setSpacing(4)
        self._notices: dict[str, Notice] = {}
        self.hide()

    def show_notice(self, key: str, text: str, kind: str = "info",
                    actions: list[tuple[str, Callable[[], None]]] = (), closable: bool = True) -> Notice:
        """Show a notice; one with the same key is replaced."""
        self.remove(key)
        notice = Notice(key, text, kind, actions, closable, self)
        self._layout.addWidget(notice)
        self._notices[key] = notice
        self._restack()
        self.show()
        return notice

    def remove(self, key: str) -> None:
        notice = self._notices.get(key)
        if notice is not None:
            notice.dismiss()

    def forget(self, notice: Notice) -> None:
        if self._notices.get(notice.key) is notice:
            del self._notices[notice.key]
        self._restack()
        if not self._notices:
            self.hide()

    def _restack(self) -> None:
        """The MAX_SHOWN most severe notices are shown (newest first within a kind), in that order
        from the top; the others wait. Information keeps its clock while it waits: news that could
        not be shown in time is not worth showing late."""
        newest_first = list(reversed(self._notices.values()))
        ranked = sorted(newest_first, key=lambda n: SEVERITY.get(n.kind, SEVERITY["info"]))
        for place, notice in enumerate(ranked):
            self._layout.removeWidget(notice)
            self._layout.insertWidget(place, notice)
            notice.setVisible(place < MAX_SHOWN)

    def get(self, key: str) -> Notice | None:
        return self._notices.get(key)

    def set_text(self, key: str, text: str) -> None:
        """New words for a notice that is showing (e.g. a download's stage); nothing if it is gone."""
        notice = self._notices.get(key)
        if notice is not None:
            notice.label.setText(text)

    def texts(self) -> list[str]:
        return [n.text() for n in self._notices.values()]

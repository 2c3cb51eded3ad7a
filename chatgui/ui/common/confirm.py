"""One styled question for every confirmation in the window, instead of the stock "?" box.

A title, one plain sentence, a primary button (filled with the accent, or red when it destroys
something), a secondary one that answers "no" (also Esc and closing the dialog), and optionally a
third on the left for another way out (e.g. "Use in place"). `ask()` returns which was pressed:
"primary", "other", or None.

Tests answer without showing anything: `monkeypatch.setattr(ConfirmDialog, "exec", lambda d:
d.choose("primary"))`, and they can read the question from the dialog (`d.text()`, `d.buttons`).
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

DESTRUCTIVE_RED = "#dc2626"     # reads as "danger" on the light and the dark palette alike
WIDTH = 420

STYLE = f"""
QDialog#confirmDialog {{ background: palette(base); }}
QLabel#confirmTitle {{ font-size: 15px; font-weight: bold; }}
QPushButton {{ padding: 6px 14px; border-radius: 8px; border: 1px solid palette(mid); background: palette(base); }}
QPushButton:hover {{ background: palette(midlight); }}
QPushButton:focus {{ border: 1px solid palette(highlight); }}
QPushButton#confirmPrimary {{ border: none; background: palette(highlight); color: palette(highlighted-text);
    font-weight: bold; }}
QPushButton#confirmPrimary[destructive="true"] {{ background: {DESTRUCTIVE_RED}; color: white; }}
QPushButton#confirmOther[destructive="true"] {{ color: {DESTRUCTIVE_RED}; }}
"""


class ConfirmDialog(QDialog):
    def __init__(self, parent: QWidget | None, title: str, text: str, primary: str, secondary: str | None = None,
                 *, destructive: bool = False, other: str | None = None, other_destructive: bool = False):
        super().__init__(parent)
        self.setObjectName("confirmDialog")
        self.setWindowTitle(title)
        self.setStyleSheet(STYLE)
        self.setMinimumWidth(WIDTH)
        self.answer: str | None = None

        column = QVBoxLayout(self)
        column.setContentsMargins(22, 20, 22, 18)
        column.setSpacing(10)
        self.title_label = QLabel(title)
        self.title_label.setObjectName("confirmTitle")
        self.title_label.setWordWrap(True)
        self.text_label = QLabel(text)
        self.text_label.setObjectName("confirmText")
        self.text_label.setWordWrap(True)
        self.text_label.setTextFormat(Qt.TextFormat.PlainText)   # chat titles and file names are quoted as is
        column.addWidget(self.title_label)
        column.addWidget(self.text_label)
        column.addSpacing(8)

        row = QHBoxLayout()
        row.setSpacing(8)
        self.buttons: dict[str, QPushButton] = {}
        if other:
            self.buttons["other"] = self._button(other, "confirmOther", other_destructive, "other")
            row.addWidget(self.buttons["other"])
        row.addStretch(1)
        self.buttons["secondary"] = self._button(secondary or self.tr("Cancel"), "confirmSecondary", False, None)
        self.buttons["primary"] = self._button(primary, "confirmPrimary", destructive, "primary")
        row.addWidget(self.buttons["secondary"])
        row.addWidget(self.buttons["primary"])
        column.addLayout(row)
        # A destructive answer is never the one Enter gives by accident.
        default = self.buttons["secondary" if destructive else "primary"]
        default.setDefault(True)
        default.setFocus()

    def _button(self, caption: str, name: str, destructive: bool, answer: str | None) -> QPushButton:
        button = QPushButton(caption)
        button.setObjectName(name)
        button.setProperty("destructive", destructive)
        button.setAutoDefault(False)
        button.clicked.connect(lambda: self.choose(answer))
        return button

    def text(self) -> str:
        return self.text_label.text()

    def choose(self, answer: str | None) -> int:
        """Answer as if that button ("primary", "other", None: the secondary) had been pressed."""
        self.answer = answer
        self.done(QDialog.DialogCode.Accepted if answer else QDialog.DialogCode.Rejected)
        return self.result()


def ask(parent: QWidget | None, title: str, text: str, primary: str, secondary: str | None = None, *,
        destructive: bool = False, other: str | None = None, other_destructive: bool = False) -> str | None:
    """Ask and wait: "primary", "other", or None (the secondary button, Esc, or the window closed)."""
    dialog = ConfirmDialog(parent, title, text, primary, secondary, destructive=destructive, other=other,
                           other_destructive=other_destructive)
    dialog.exec()
    answer = dialog.answer
    dialog.deleteLater()
    return answer

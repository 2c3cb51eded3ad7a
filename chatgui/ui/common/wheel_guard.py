"""Scrolling a panel must not change the spin box or combo box that happens to pass under the
pointer: without focus, their wheel events scroll the panel instead (as in browsers and most
desktop apps). Clicking or tabbing into a field gives it focus, and then the wheel changes it."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget


class WheelGuard(QObject):
    def eventFilter(self, watched, event):   # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            area = _scroll_area_of(watched)
            if area is not None:
                QApplication.sendEvent(area.verticalScrollBar(), event)
            return True   # never to the field itself
        return False


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    return parent


def guard_wheel(root: QWidget) -> None:
    """Apply the rule to every spin box and combo box under `root` (call again for widgets added later)."""
    guard = root.findChild(WheelGuard, "wheelGuard")
    if guard is None:
        guard = WheelGuard(root)
        guard.setObjectName("wheelGuard")
    for field in root.findChildren(QAbstractSpinBox) + root.findChildren(QComboBox):
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)   # not WheelFocus: the wheel alone does not focus it
        field.removeEventFilter(guard)
        field.installEventFilter(guard)

"""Widgets named once for the style sheet and tests (objectName) and for screen readers
(accessibleName)."""
from __future__ import annotations


def named(widget, name: str, accessible: str):
    """widget, with its objectName and accessibleName set; returned so it can be made inline."""
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    return widget

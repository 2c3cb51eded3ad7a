"""chatgui's Qt user interface. The engine (and torch) is only imported by the worker thread."""
from chatgui.ui.common.qt_compat import guard_singleton_refcounts

guard_singleton_refcounts()

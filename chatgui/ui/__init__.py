"""chatgui's Qt user interface. The engine (and torch) is only imported by the worker thread."""
from .qt_compat import guard_singleton_refcounts

guard_singleton_refcounts()

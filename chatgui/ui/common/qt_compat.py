"""Work around a reference-counting bug in some PySide6 builds on Python < 3.12.

PySide6 6.12's wheels return None, True and False from many calls (every void method,
Signal.emit, ...) without taking a new reference. Python 3.12+ does not mind: those objects are
immortal there. On 3.10 and 3.11 each such call drops one reference that was never taken, and
after some thousands of calls (a few seconds of a busy event loop) Python aborts with
"Fatal Python error: none_dealloc: deallocating None".

`guard_singleton_refcounts()` checks whether the installed binding has the bug and, if so, gives
None, True and False a reference count so large that it can never reach zero, which is what
Python 3.12 does for them anyway. On a fixed binding, or Python 3.12+, it does nothing.
"""
from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 60   # more dropped references than any process could ever make
_applied = False


def binding_drops_references() -> bool:
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("")   # a void method: returns None
    return sys.getrefcount(None) < before


def guard_singleton_refcounts() -> bool:
    """Returns True if the guard is (now) in place."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return False   # immortal singletons already, or an object layout we do not assume
    if not binding_drops_references():
        return False
    for obj in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(obj))   # ob_refcnt: the first field of every object
        before = sys.getrefcount(obj)
        count.value += _HEADROOM
        if sys.getrefcount(obj) != before + _HEADROOM:   # not the layout we expected: undo
            count.value -= _HEADROOM
            return False
    _applied = True
    return True

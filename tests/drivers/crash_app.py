"""Run the real app, send one message, and report the streaming reply's length as it grows.

Used by test_crash_safety.py, which kills this process with SIGKILL mid-reply. The only test
hook: the reply ignores end-of-turn so that it is surely still streaming when the kill comes.
"""
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import chatgui.engine.chat_model as chat_model  # noqa: E402

_generate = chat_model.ChatModel.generate
chat_model.ChatModel.generate = lambda self, *a, **k: _generate(self, *a, **{**k, "ignore_eos": True})

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import chatgui.ui  # noqa: E402,F401  (the binding guard)
from chatgui.ui.main_window import MainWindow  # noqa: E402

app = QApplication([])
window = MainWindow()
window.show()


def send_when_loaded():
    if window.model_controller.loaded is None:
        QTimer.singleShot(50, send_when_loaded)
        return
    window.send_message("Tell me a very long story about a lighthouse keeper.")
    print("SENT", time.time(), flush=True)


def report():
    active = window.replies.active
    if active is not None:
        print("LEN", time.time(), len(active.text), flush=True)


QTimer.singleShot(50, send_when_loaded)
timer = QTimer(interval=100)
timer.timeout.connect(report)
timer.start()
app.exec()

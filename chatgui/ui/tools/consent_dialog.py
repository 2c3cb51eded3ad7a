"""Asking the user before a tool runs. The tool loop asks on the model runner's thread; the
dialog must live on the GUI thread. ConsentAsker.ask (runner thread) sends the question over a
queued signal and blocks on a threading.Event until the user answers, or until the reply's
cancel flag is set (Stop, or the window closing), which is a denial."""
from __future__ import annotations

import json
import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from chatgui.common.tools import ToolCall, ToolSpec
from chatgui.tools.consent import Decision, server_of


def pretty_arguments(arguments: dict) -> str:
    return json.dumps(arguments, ensure_ascii=False, indent=2, sort_keys=True) if arguments else "{}"


class ConsentDialog(QDialog):
    """"Allow calculator to run?" with its arguments, and four answers."""
    decided = Signal(str)     # a Decision's value

    def __init__(self, call: ToolCall, spec: ToolSpec, parent=None):
        super().__init__(parent)
        self.setObjectName("toolConsentDialog")
        self.setWindowTitle(self.tr("Allow a tool call?"))
        self.setModal(True)
        self.decision = Decision.DENY
        self.answered = False
        layout = QVBoxLayout(self)
        server = server_of(spec)
        where = (self.tr("from the MCP server “{server}”").format(server=server) if server
                 else self.tr("built into chatgui"))
        title = QLabel(self.tr("The model wants to call <b>{tool}</b> ({where}).").format(
            tool=_escape(call.name), where=_escape(where)))
        title.setObjectName("consentTitle")
        title.setWordWrap(True)
        layout.addWidget(title)
        if spec.description:
            about = QLabel(spec.description)
            about.setWordWrap(True)
            about.setEnabled(False)   # muted
            layout.addWidget(about)
        layout.addWidget(QLabel(self.tr("Arguments:")))
        self.arguments = QPlainTextEdit(pretty_arguments(call.arguments))
        self.arguments.setObjectName("consentArguments")
        self.arguments.setReadOnly(True)
        self.arguments.setMaximumHeight(160)
        layout.addWidget(self.arguments)
        row = QHBoxLayout()
        self.buttons: dict[Decision, QPushButton] = {}
        for decision, text in ((Decision.DENY, self.tr("Deny")), (Decision.ALLOW_ONCE, self.tr("Allow once")),
                               (Decision.ALLOW_CHAT, self.tr("Always in this chat")),
                               (Decision.ALLOW_ALWAYS, self.tr("Always"))):
            button = QPushButton(text)
            button.setObjectName(f"consent_{decision.value}")
            button.clicked.connect(lambda _c=False, d=decision: self._answer(d))
            row.addWidget(button)
            self.buttons[decision] = button
        row.insertStretch(1)
        self.buttons[Decision.ALLOW_ONCE].setDefault(True)
        layout.addLayout(row)

    def _answer(self, decision: Decision) -> None:
        self.decision, self.answered = decision, True
        self.decided.emit(decision.value)
        self.accept() if decision is not Decision.DENY else super().reject()

    def reject(self) -> None:   # Escape or the close button: a denial
        if not self.answered:
            self.answered = True
            self.decided.emit(Decision.DENY.value)
        super().reject()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Question:
    def __init__(self, call: ToolCall, spec: ToolSpec):
        self.call, self.spec = call, spec
        self.answer = Decision.DENY
        self.done = threading.Event()
        self._lock = threading.Lock()

    def finish(self, decision: Decision) -> bool:
        """The first answer counts (the user's, or a cancel's denial)."""
        with self._lock:
            if self.done.is_set():
                return False
            self.answer = decision
            self.done.set()
            return True


class ConsentAsker(QObject):
    """Lives on the GUI thread; `ask_for(cancel)` gives the loop its ask(call, spec) callback."""
    _asked = Signal(object)      # a _Question, to the GUI thread
    _withdrawn = Signal(object)  # a _Question ended by Stop: close its dialog
    dialog_shown = Signal(object)   # the ConsentDialog (tests and screenshots find it here)

    def __init__(self, parent_widget=None):
        super().__init__(parent_widget)
        self._parent_widget = parent_widget
        self._dialogs: dict[int, ConsentDialog] = {}
        self._asked.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._withdrawn.connect(self._close, Qt.ConnectionType.QueuedConnection)

    def ask_for(self, cancel: threading.Event | None):
        def ask(call: ToolCall, spec: ToolSpec) -> Decision:
            question = _Question(call, spec)
            forget = None
            if cancel is not None:
                if cancel.is_set():
                    return Decision.DENY
                on_set = getattr(cancel, "on_set", None)
                if on_set is not None:
                    forget = on_set(lambda: question.finish(Decision.DENY) and self._withdrawn.emit(question))
            self._asked.emit(question)
            while not question.done.wait(0.1):
                if cancel is not None and cancel.is_set():   # a plain Event has no callback
                    if question.finish(Decision.DENY):
                        self._withdrawn.emit(question)
            if forget is not None:
                forget()
            return question.answer
        return ask

    def open_dialogs(self) -> list[ConsentDialog]:
        return list(self._dialogs.values())

    def _show(self, question: _Question) -> None:
        if question.done.is_set():
            return
        dialog = ConsentDialog(question.call, question.spec, self._parent_widget)
        self._dialogs[id(question)] = dialog
        dialog.decided.connect(lambda value: question.finish(Decision(value)))
        dialog.finished.connect(lambda _r: (self._dialogs.pop(id(question), None), dialog.deleteLater()))
        dialog.open()
        self.dialog_shown.emit(dialog)

    def _close(self, question: _Question) -> None:
        dialog = self._dialogs.pop(id(question), None)
        if dialog is not None:
            dialog.answered = True   # already denied by Stop: nothing more to say
            dialog.reject()

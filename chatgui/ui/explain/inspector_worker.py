"""The sampling inspector's half on the model runner: a job that asks the backend
(ChatModel.explain_next_token, engine/next_token.py) and sends the answer to the GUI, queued.

InspectorWorker.explain runs as a job of the model runner (so it never runs at the same time as
a reply, and uses the backend in use). The engine caches a position's logits, so a change of the
sampling settings only re-runs the filters. The GUI sets `latest` to its newest request id (a
plain int, set from the GUI thread): requests that are already stale when their turn comes are
skipped. No torch here: the numbers are the engine's, inspector.py only draws them.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

TOP_N = 30


class InspectorWorker(QObject):
    explained = Signal(int, object)      # request id, engine/next_token.py's dict
    explain_failed = Signal(int, str)    # request id, a sentence for the user

    def __init__(self, engine_worker, parent=None):
        super().__init__(parent)
        self.engine = engine_worker
        self.latest = 0
        self.logit_computations = 0      # how many forward passes were needed (tests read it)

    def explain(self, request_id: int, request: dict) -> None:
        """request: {"messages", "prefix_ids", "sampling", "chosen_id" (or None), "top_n",
        "dropped_messages" (the inspected reply's, or None)}."""
        if request_id != self.latest or self.engine.closing.is_set():
            return
        model = self.engine.model
        if model is None:
            self.explain_failed.emit(request_id, self.tr("No model is loaded."))
            return
        if not model.capabilities.next_token_logits:
            self.explain_failed.emit(request_id, self.tr("The sampling inspector needs a model that runs on this "
                                                         "computer."))
            return
        try:
            data = model.explain_next_token(request["messages"], request.get("prefix_ids") or (),
                                            request.get("sampling"), request.get("chosen_id"),
                                            int(request.get("top_n") or TOP_N), request.get("dropped_messages"))
        except Exception as e:   # noqa: BLE001 - e.g. the prompt is too long: say so in the panel
            self.explain_failed.emit(request_id, str(e) or type(e).__name__)
            return
        self.logit_computations += bool(data.get("computed_logits"))
        self.explained.emit(request_id, data)

"""The sampling inspector's half on the model runner.

InspectorWorker.explain runs as a job of the model runner (so it never runs at the same time
as a reply, and uses the backend in use); its signals reach the GUI queued. It computes the raw next-token logits for a position (the
end of a conversation, or a token of a reply) once and caches them by (model, messages, reply
prefix); a change of the sampling settings then only re-runs explain_sampling on the cached
logits. The GUI sets `latest` to its newest request id (a plain int, set from the GUI thread):
requests that are already stale when their turn comes are skipped.
"""
from __future__ import annotations

import json
from collections import OrderedDict

from PySide6.QtCore import QObject, Signal

TOP_N = 30
CACHE_SIZE = 16
MAX_RANK_FOR_CHOSEN = 2000   # a chosen token further down than this is not looked up


class InspectorWorker(QObject):
    explained = Signal(int, object)      # request id, {"rows": [...], "survivors", "vocab", ...}
    explain_failed = Signal(int, str)    # request id, a sentence for the user

    def __init__(self, engine_worker, parent=None):
        super().__init__(parent)
        self.engine = engine_worker
        self.latest = 0
        self.logit_computations = 0      # how many forward passes were needed (tests read it)
        self._cache: OrderedDict = OrderedDict()

    def explain(self, request_id: int, request: dict) -> None:
        """request: {"messages", "prefix_ids", "sampling", "chosen_id" (or None), "top_n"}."""
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
            self.explained.emit(request_id, self._explain(model, request))
        except Exception as e:   # noqa: BLE001 - e.g. the prompt is too long: say so in the panel
            self.explain_failed.emit(request_id, str(e) or type(e).__name__)

    def _logits(self, model, messages: list, prefix: list[int]):
        key = (json.dumps(messages, sort_keys=True, ensure_ascii=False), tuple(prefix))
        entry = self._cache.get(key)
        if entry is not None and entry[0] is model:
            self._cache.move_to_end(key)
            return entry[1], entry[2]
        ids, _dropped = model.fit_prompt(messages, 1 + len(prefix))
        logits = model.next_token_logits(messages, prefix)
        self.logit_computations += 1
        history = list(ids) + list(prefix)
        self._cache[key] = (model, logits, history)
        for stale in [k for k, v in self._cache.items() if v[0] is not model]:
            del self._cache[stale]
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return logits, history

    def _explain(self, model, request: dict) -> dict:
        import torch

        from chatgui.engine.sampling import explain_sampling, logits_to_probs
        from chatgui.common.types import SamplingSettings

        prefix = [int(t) for t in request.get("prefix_ids") or ()]
        logits, history = self._logits(model, request["messages"], prefix)
        settings = SamplingSettings.from_dict(request.get("sampling") or {})
        recent = history[-settings.repeat_last_n:] if settings.repeat_last_n > 0 else []
        top_n = int(request.get("top_n") or TOP_N)
        stages = explain_sampling(logits, settings, recent, top_n=top_n)
        final = logits_to_probs(logits, settings, recent)
        chosen = request.get("chosen_id")
        rows = [_row(model, rank, st) for rank, st in enumerate(stages, 1)]
        if chosen is not None and all(r["id"] != chosen for r in rows):
            raw = torch.softmax(logits.float(), -1)
            rank = int((raw > raw[int(chosen)]).sum()) + 1
            if rank <= MAX_RANK_FOR_CHOSEN:
                more = explain_sampling(logits, settings, recent, top_n=rank + 5)
                for r, st in enumerate(more, 1):
                    if st.token_id == chosen:
                        rows.append(_row(model, r, st))
                        break
        return {"rows": rows, "survivors": int((final > 0).sum()), "vocab": int(logits.numel()),
                "sampling": settings.to_dict(), "prompt_tokens": len(history), "chosen_id": chosen,
                "shown_final_mass": float(sum(r["final"] for r in rows))}


def _row(model, rank: int, st) -> dict:
    return {"id": st.token_id, "text": model.token_text(st.token_id), "rank": rank, "raw": st.raw_prob,
            "penalized": st.penalized_prob, "temp": st.temp_prob, "top_k": st.kept_top_k, "top_p": st.kept_top_p,
            "min_p": st.kept_min_p, "final": st.final_prob}

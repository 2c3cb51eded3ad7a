"""The sampling inspector's numbers: how the next token at a position is chosen. No Qt.

`NextTokenExplainer.explain` computes the raw next-token logits of a position (the end of a
conversation, or a token of a reply) once, caches them by (messages, reply prefix), and runs
sampling.explain_sampling on them for the settings asked about: moving a slider re-runs only
the filters. A ChatModel has one (`ChatModel.explain_next_token`); it runs on the model's
runner thread like any other use of the model. The result is plain data the UI formats:

    {"rows": [{"id", "text", "rank", "raw", "penalized", "temp", "final",
               "kept": {stage name: still drawable after that stage}}, ...], "survivors", "vocab",
     "sampling", "prompt_tokens", "chosen_id", "shown_final_mass",
     "computed_logits" (False when the cached logits were used)}
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch

from chatgui.common.prompt import PromptMessage
from chatgui.common.types import SamplingSettings

from .sampling import explain_sampling, logits_to_probs

TOP_N = 30
CACHE_SIZE = 16
MAX_RANK_FOR_CHOSEN = 2000   # a chosen token further down than this is not looked up


class NextTokenExplainer:
    def __init__(self, model):
        self.model = model
        self._cache: OrderedDict = OrderedDict()    # key -> (logits, prompt ids + prefix)

    def explain(self, messages: Sequence[PromptMessage], prefix_ids=(), sampling: dict | None = None,
                chosen_id: int | None = None, top_n: int = TOP_N, dropped_messages: int | None = None) -> dict:
        """The top_n most likely tokens after messages (+ prefix_ids), each through every sampling
        stage of `sampling` (a SamplingSettings dict); chosen_id is added if it is not among them."""
        model = self.model
        prefix = [int(t) for t in prefix_ids or ()]
        logits, history, computed = self._logits(messages, prefix, dropped_messages)
        settings = SamplingSettings.from_dict(sampling or {})
        breakers = getattr(model, "dry_breaker_ids", None)
        stages = explain_sampling(logits, settings, history, top_n=top_n, breaker_ids=breakers)
        final = logits_to_probs(logits, settings, history, breakers)
        rows = [_row(model, rank, st) for rank, st in enumerate(stages, 1)]
        if chosen_id is not None and all(r["id"] != chosen_id for r in rows):
            raw = torch.softmax(logits.float(), -1)
            rank = int((raw > raw[int(chosen_id)]).sum()) + 1
            if rank <= MAX_RANK_FOR_CHOSEN:
                more = explain_sampling(logits, settings, history, top_n=rank + 5, breaker_ids=breakers)
                rows += [_row(model, r, st) for r, st in enumerate(more, 1) if st.token_id == chosen_id][:1]
        return {"rows": rows, "survivors": int((final > 0).sum()), "vocab": int(logits.numel()),
                "sampling": settings.to_dict(), "prompt_tokens": len(history), "chosen_id": chosen_id,
                "shown_final_mass": float(sum(r["final"] for r in rows)), "computed_logits": computed}

    def _logits(self, messages: Sequence[PromptMessage], prefix: list[int], dropped_messages: int | None = None):
        key = (repr(tuple(messages)), tuple(prefix), dropped_messages)   # (a call's arguments are a dict: no hash)
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            return entry[0], entry[1], False
        prompt = self.model.inspected_prompt(messages, len(prefix), dropped_messages)
        history = prompt + prefix
        # (the prompt fitted once, not again; the reply's tokens computed as they were decoded)
        logits = self.model.logits_after(history, prompt_len=len(prompt))
        self._cache[key] = (logits, history)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return logits, history, True


def _row(model, rank: int, st) -> dict:
    return {"id": st.token_id, "text": model.token_text(st.token_id), "rank": rank, "raw": st.raw_prob,
            "penalized": st.penalized_prob, "temp": st.temp_prob, "final": st.final_prob, "kept": dict(st.kept)}

"""Several candidate replies to one prompt, decoded together: one forward pass carries all n.

The prompt is prefilled once, into the model's own KV cache (so the next ordinary turn can
reuse it). Its keys and values are then copied into a batch cache with n rows, one per
candidate, which stands in for the model's cache while the n candidates decode: each step
feeds n tokens, [n, 1], through Transformer.forward at one position. Each candidate has its own
random generator (seed + i), history (for the repetition penalty), stop-string state and end.
`choice_settings` gives each candidate sampling settings of its own (Compare presets: the same
prompt and seed, two temperatures); the length and the stop strings stay the batch's.

    batch = generate_batch(model, messages, settings, n=3)
    for i, event in batch.events():     # event None: candidate i has finished
        ...
    [c.text for c in batch.choices]
"""
from __future__ import annotations

import secrets
import time
from typing import Iterator, Sequence

import torch

from .chat_model import ChatModel, _split_stop, fit_prompt_ids, reply_stops
from .deltanet import RecurrentState
from .model import KVCache
from .sampling import candidates, draw, make_generator
from .tokenizer import decode_stream
from chatgui.common.prompt import PromptMessage
from chatgui.common.records import FinishReason
from chatgui.common.types import GenerationStats, SamplingSettings, TokenEvent


class BatchKV(KVCache):
    """A KV cache with one row per candidate, starting with the prompt's keys and values (those
    the prompt's cache holds: a sliding-window one may have dropped its oldest), long enough for
    positions up to `length` without sliding."""

    def __init__(self, prompt: KVCache, prompt_len: int, n: int, length: int):
        _, _, nkv, _, hd = prompt.kv.shape
        super().__init__(length, nkv, hd, prompt.kv.dtype, prompt.kv.device, prompt.window,
                         length - prompt.base, rows=n)
        self.base = prompt.base
        held = prompt_len - prompt.base
        self.kv[:, :, :, :held] = prompt.kv[:, :, :, :held]     # broadcast over the n rows


class Choice:
    """One candidate: `text`, `token_ids` and `stats` fill in as it decodes (like Generation)."""

    def __init__(self, index: int, seed: int, stream, constraint=None, settings: SamplingSettings | None = None):
        self.index = index
        self.settings = settings            # its own sampling settings (None: the batch's)
        self.constraint = constraint
        self.text = ""
        self.token_ids: list[int] = []
        self.stats = GenerationStats(seed=seed, finish_reason=FinishReason.LENGTH)
        self.done = False
        self.generator = make_generator(seed)
        self.stream = stream                # tokenizer.decode_stream
        self.held = ""
        self.hit = False                    # ended by a stop string


def generate_batch(model: ChatModel, messages: Sequence[PromptMessage], settings: SamplingSettings | None, n: int,
                   cancel=None, *, prompt_ids=None, top_alternatives: int = 5, ignore_eos: bool = False,
                   constraint=None, choice_settings: list[SamplingSettings] | None = None) -> "BatchGeneration":
    """constraint: a constrained.JsonConstraint; each candidate follows a fresh copy of it.
    choice_settings: n settings, candidate i samples with the i-th (and draws from its seed)."""
    return BatchGeneration(model, messages, settings or SamplingSettings(), n, cancel, prompt_ids,
                           top_alternatives, ignore_eos, constraint, choice_settings)


def _choice_seed(own: SamplingSettings | None, default: int) -> int:
    seed = own.seed if own is not None and own.seed is not None else default
    return seed & 0x7FFF_FFFF_FFFF_FFFF


class BatchGeneration:
    def __init__(self, model: ChatModel, messages: Sequence[PromptMessage], settings: SamplingSettings, n: int, cancel,
                 prompt_ids, top_alternatives: int, ignore_eos: bool, constraint=None, choice_settings=None):
        if n < 1:
            raise ValueError("n must be at least 1")
        if choice_settings is not None and len(choice_settings) != n:
            raise ValueError("choice_settings needs one settings object per candidate")
        self.model, self.settings, self.n, self.cancel = model, settings, n, cancel
        self.top_alternatives = top_alternatives
        self.stop_ids = frozenset() if ignore_eos else model.tok.stop_ids
        self.stops = reply_stops(model, settings, prompt_ids, ignore_eos)
        if prompt_ids is not None:
            self.prompt_ids, dropped = fit_prompt_ids(model, prompt_ids), 0
        else:
            self.prompt_ids, dropped = model.fit_reply_prompt(messages, settings.max_new_tokens)
        self.max_new = max(0, min(settings.max_new_tokens, model.context_length - len(self.prompt_ids)))
        seed = settings.seed if settings.seed is not None else secrets.randbits(63)
        self.stats = GenerationStats(prompt_tokens=len(self.prompt_ids), dropped_messages=dropped, seed=seed)
        # Candidate i draws from seed + i: a seeded request gives the same n replies again.
        own = list(choice_settings or [None] * n)
        self.choices = [Choice(i, _choice_seed(own[i], seed + i), decode_stream(model.tok.tokenizer),
                               constraint and constraint.fresh(), own[i]) for i in range(n)]

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def events(self) -> Iterator[tuple[int, TokenEvent | None]]:
        """(i, TokenEvent) for each new token of candidate i, and (i, None) when it has ended."""
        m, st, net = self.model, self.stats, self.model.net
        t0 = time.perf_counter()
        logits = m._prefill(self.prompt_ids, self.cancel)
        if logits is None:
            for c in self.choices:
                c.stats.finish_reason = FinishReason.CANCELLED
            return
        logits = logits.float().expand(self.n, -1)
        P = len(self.prompt_ids)
        layers = [layer.attn for layer in net.layers]
        own = [a.cache for a in layers]
        # (a recurrent layer's state, at the prompt's end, copied into n rows)
        length = P + max(self.max_new, 1)
        # (one batch cache per cache: layers that share one (gemma4) share its batch copy too)
        made: dict[int, BatchKV | RecurrentState] = {}
        batch = [made.setdefault(id(c), c.with_rows(self.n) if isinstance(c, RecurrentState)
                                 else BatchKV(c, P, self.n, length)) for c in own]
        t_first, total = None, 0
        rows = list(range(self.n))          # the candidate each row of the batch decodes
        try:
            for step in range(self.max_new):
                for r, ci in enumerate(rows):
                    c = self.choices[ci]
                    if c.done:              # (its row goes at the next _drop_finished)
                        continue
                    event = self._sample(c, logits[r], step)
                    if event is not None:
                        total += 1
                        if t_first is None:
                            t_first = time.perf_counter()
                            st.time_to_first_token = t_first - t0
                        yield c.index, event
                    if c.done:
                        self._flush(c)
                        yield c.index, None
                if all(c.done for c in self.choices):
                    break
                if self._cancelled():
                    for c in self.choices:
                        if not c.done:
                            c.stats.finish_reason = FinishReason.CANCELLED
                    break
                if step + 1 < self.max_new:
                    rows = self._drop_finished(rows, batch)
                    tokens = [(self.choices[ci].token_ids or self.prompt_ids)[-1] for ci in rows]
                    for a, kv in zip(layers, batch):
                        a.cache = kv
                    try:
                        x = torch.tensor(tokens, dtype=torch.long, device=m.device)[:, None]
                        logits = net(x, P + step)[:, -1].float()
                    finally:
                        for a, kv in zip(layers, own):
                            a.cache = kv
        finally:
            for c in self.choices:
                if not c.done:
                    c.done = True
                    self._flush(c)
        if t_first is not None and total > self.n:
            st.tokens_per_second = (total - self.n) / max(time.perf_counter() - t_first, 1e-9)
        st.generated_tokens = total

    def _drop_finished(self, rows: list[int], batch: list[BatchKV | RecurrentState]) -> list[int]:
        """Rows of candidates still decoding, their cache rows kept and the others dropped, so
        that finished candidates cost nothing. (A batch of one row stays on this cache: the
        model's single-token fast path is only for its own, Transformer.forward.)"""
        keep = [r for r, ci in enumerate(rows) if not self.choices[ci].done]
        if len(keep) == len(rows) or not keep:
            return rows
        index = torch.tensor(keep, device=batch[0].kv.device)
        for kv in {id(kv): kv for kv in batch}.values():
            if isinstance(kv, RecurrentState):
                kv.keep_rows(index)
            else:
                kv.kv = kv.kv.index_select(1, index)
        return [rows[r] for r in keep]

    def _sample(self, c: Choice, logits: torch.Tensor, step: int) -> TokenEvent | None:
        """Draw candidate c's next token; None when it is an end token (c is then done)."""
        m, s = self.model, c.settings or self.settings
        history = self.prompt_ids + c.token_ids
        raw = torch.softmax(logits, -1)
        if c.constraint is not None:
            logits = c.constraint.mask(logits)
            if c.constraint.failed:             # the grammar engine gave up (_flush says so)
                c.done = True
                return None
        ids, probs = candidates(logits, s, history, c.generator, m.dry_breaker_ids)
        pick = draw(probs, c.generator)
        tid = int(ids[pick])
        if tid in self.stop_ids:
            c.stats.finish_reason, c.done = FinishReason.STOP, True
            return None
        if c.constraint is not None:
            c.constraint.advance(tid)
        c.token_ids.append(tid)
        piece = c.stream.step(m.tok.tokenizer, tid) or ""
        text, c.held, hit = _split_stop(c.held + piece, self.stops)
        c.text += text
        c.stats.generated_tokens = step + 1
        if hit:
            c.stats.finish_reason, c.done, c.hit = FinishReason.STOP_STRING, True, True
        elif step + 1 >= self.max_new:
            c.done = True
        return TokenEvent(step, tid, text, float(raw[tid]), m._alternatives(raw, self.top_alternatives),
                          float(probs[pick]), m._alternatives(probs, ids=ids))

    def _flush(self, c: Choice) -> None:
        """As Generation does at its end: the whole text, held-back pieces included, unless a stop
        string cut it."""
        if c.constraint is not None and c.constraint.failed and c.stats.finish_reason != "cancelled":
            c.stats.finish_reason, c.stats.extra["error"] = FinishReason.ERROR, c.constraint.failed
        if not c.hit:
            c.text = self.model.detokenize(c.token_ids, skip_special=True)

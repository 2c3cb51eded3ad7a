"""Sampling as pure functions on a 1-D logits vector (float32).

Order, as in Hugging Face's generate: repetition penalty, temperature, top-k, top-p, min-p,
then a draw from what is left. Filters set removed logits to -inf and never remove the most
likely token, so something always survives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from chatgui.common.types import SamplingSettings

NEG_INF = float("-inf")


def top_indices(x: torch.Tensor, k: int, group: int = 64) -> torch.Tensor:
    """The indices of the k largest values along the last dimension, unordered: what
    x.topk(k).indices holds, found in two cheap stages (topk over a 49k vocabulary costs ~0.1 ms
    here, and it runs several times per token). Stage one keeps the k groups of `group`
    neighbours with the largest maxima: each of the k largest values lies in one of them, since a
    value outside them is beaten by the maxima of k other groups. Stage two is a topk over those
    k * group values."""
    n = x.shape[-1]
    if n % group or n < 4 * k * group:
        return x.topk(min(k, n), dim=-1, sorted=False).indices
    rows = x.reshape(-1, n)
    best_groups = rows.view(rows.shape[0], n // group, group).amax(dim=-1).topk(k, dim=-1, sorted=False).indices
    cols = (best_groups[..., None] * group + torch.arange(group, device=x.device)).view(rows.shape[0], k * group)
    found = cols.gather(1, rows.gather(1, cols).topk(k, dim=-1, sorted=False).indices)
    return found.view(*x.shape[:-1], k)


def top_values(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the k largest entries of a 1-D x, largest first (like torch.topk)."""
    idx = top_indices(x, k)
    vals, order = x[idx].sort(descending=True)
    return vals, idx[order]


def apply_repeat_penalty(logits: torch.Tensor, recent_ids: Iterable[int], penalty: float) -> torch.Tensor:
    """llama.cpp's penalty: divide positive logits of recently seen tokens, multiply negative ones."""
    if penalty == 1.0:
        return logits
    ids = sorted(set(map(int, recent_ids)))
    if not ids:
        return logits
    idx = torch.tensor(ids, dtype=torch.long, device=logits.device)
    vals = logits.index_select(0, idx)
    return logits.index_copy(0, idx, torch.where(vals > 0, vals / penalty, vals * penalty))


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if temperature <= 0 or temperature == 1.0:
        return logits
    if temperature < 1e-3:
        # logits / 1e-300 overflow to +-inf and softmax gives NaN (an API client sent that: the
        # reply came back empty). Relative to the top logit nothing overflows upwards: the top
        # stays 0 and the rest go to -inf, the greedy limit. Same distribution otherwise.
        logits = logits - logits.max()
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 0 or k >= logits.numel():
        return logits
    kth = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability mass reaches p."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, stable=True)   # ties: lower id first
    cum = torch.softmax(sorted_logits, -1).cumsum(-1)
    # Remove a token when the mass before it already reaches p (the first token always stays).
    remove_sorted = (cum - torch.softmax(sorted_logits, -1)) >= p
    remove = torch.zeros_like(remove_sorted).scatter(0, order, remove_sorted)
    return logits.masked_fill(remove, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens whose probability is at least min_p times the top token's."""
    if min_p <= 0:
        return logits
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < min_p * probs.max(), NEG_INF)


def argmax(x: torch.Tensor, group: int = 64) -> int:
    """int(torch.argmax(x)) of a 1-D x, first maximum included, in ~25 instead of ~115 us for
    a 49k vocabulary on this CPU (torch's argmax is not vectorized; amax is): the first group
    holding the maximum, then the first maximum inside it."""
    n = x.numel()
    if n % group or n < 16 * group:
        return int(torch.argmax(x))
    g = int(torch.argmax(x.view(n // group, group).amax(dim=-1)))
    return g * group + int(torch.argmax(x[g * group:(g + 1) * group]))


def candidates(logits: torch.Tensor, s: SamplingSettings, recent_ids: Iterable[int] = ()) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """The distribution a token is drawn from under settings s, as (ids, probs) of the tokens
    it can draw, ids ascending: with top-k on, the work after the repetition penalty and the
    temperature is done on k values instead of the whole vocabulary. Temperature 0: the argmax."""
    logits = apply_repeat_penalty(logits.float(), recent_ids, s.repeat_penalty)
    if s.temperature <= 0:
        return _only_the_argmax(logits)
    logits = apply_temperature(logits, s.temperature)
    if 0 < s.top_k < logits.numel():
        # Same result as filtering the whole vocabulary, but top-p and min-p only look at the
        # k survivors instead of sorting every logit on each token.
        idx = top_indices(logits, s.top_k).sort().values
        probs = torch.softmax(min_p_filter(top_p_filter(logits[idx], s.top_p), s.min_p), -1)
    else:
        probs = torch.softmax(min_p_filter(top_p_filter(logits, s.top_p), s.min_p), -1)
        idx = torch.arange(probs.numel(), device=probs.device)
    keep = probs > 0
    ids = idx[keep]
    if not ids.numel():         # NaN logits (a broken model file): no token is drawable
        return _only_the_argmax(logits)
    return ids, probs[keep]


def _only_the_argmax(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([argmax(logits)], device=logits.device), torch.ones(1, device=logits.device)


def logits_to_probs(logits: torch.Tensor, s: SamplingSettings, recent_ids: Iterable[int] = ()) -> torch.Tensor:
    """candidates() as a probability for every token of the vocabulary."""
    ids, probs = candidates(logits, s, recent_ids)
    return torch.zeros(logits.shape, device=logits.device).index_copy_(0, ids, probs)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """Draw one token id from probabilities over the whole vocabulary."""
    probs = probs.detach().to("cpu", torch.float32)
    support = torch.nonzero(probs > 0).flatten()
    if not support.numel():
        return int(torch.argmax(probs))
    return int(support[draw(probs[support], generator)])


def draw(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """An index i of probs (all > 0; candidates() gives them) drawn with probability probs[i] / sum:
    one uniform number against the cumulative probabilities (torch.multinomial over a whole
    vocabulary costs ~1.5 ms here). Drawing on the CPU keeps a seed's result the same on every
    device; a single candidate draws no number."""
    if probs.numel() == 1:
        return 0
    cdf = probs.detach().to("cpu", torch.float32).cumsum(0)
    u = torch.rand((), generator=generator) * cdf[-1]
    return min(int(torch.searchsorted(cdf, u, right=True)), probs.numel() - 1)


def make_generator(seed: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)
    return g


@dataclass(frozen=True)
class TokenStage:
    """One candidate token seen through each sampling stage (for the sampling inspector)."""
    token_id: int
    raw_prob: float          # softmax of the model's logits
    penalized_prob: float    # after the repetition penalty
    temp_prob: float         # after temperature (before any filter)
    kept_top_k: bool
    kept_top_p: bool
    kept_min_p: bool
    final_prob: float        # the distribution a token is drawn from (0 if filtered out)


def explain_sampling(logits: torch.Tensor, s: SamplingSettings, recent_ids: Iterable[int] = (),
                     top_n: int = 30) -> list[TokenStage]:
    """Each stage of logits_to_probs for the top_n most likely tokens (by raw probability),
    computed by the same functions, so what the inspector shows is what sampling does."""
    logits = logits.float()
    raw = torch.softmax(logits, -1)
    pen_logits = apply_repeat_penalty(logits, recent_ids, s.repeat_penalty)
    pen = torch.softmax(pen_logits, -1)
    final = logits_to_probs(logits, s, recent_ids)
    if s.temperature <= 0:
        temp = final
        kept_k = kept_p = kept_m = final > 0
    else:
        t_logits = apply_temperature(pen_logits, s.temperature)
        temp = torch.softmax(t_logits, -1)
        after_k = top_k_filter(t_logits, s.top_k)
        after_p = top_p_filter(after_k, s.top_p)
        after_m = min_p_filter(after_p, s.min_p)
        kept_k, kept_p, kept_m = torch.isfinite(after_k), torch.isfinite(after_p), torch.isfinite(after_m)
    ids = torch.topk(raw, min(top_n, raw.numel())).indices.tolist()
    return [TokenStage(i, float(raw[i]), float(pen[i]), float(temp[i]), bool(kept_k[i]), bool(kept_p[i]),
                       bool(kept_m[i]), float(final[i])) for i in ids]

"""Sampling as pure functions on a 1-D logits vector (float32).

The stages and their order are the sampler registry's (`common/samplers.py`: repetition penalty,
DRY, temperature, top-k, top-p, min-p, XTC, as text-generation-webui orders them); each stage's
function is registered here under the stage's name (`@stage`), and `candidates` applies them in
order, then a token is drawn from what is left (`draw`). Filters set removed logits to -inf and
never remove the most likely token, so something always survives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from chatgui.common.samplers import SAMPLER_STAGES, StageKind
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
    """int(torch.argmax(x)) of a 1-D x, first maximum included, several times faster on the CPU
    (torch's argmax is not vectorized; amax is): the first group holding the maximum, then the
    first maximum inside it."""
    n = x.numel()
    if n % group or n < 16 * group:
        return int(torch.argmax(x))
    g = int(torch.argmax(x.view(n // group, group).amax(dim=-1)))
    return g * group + int(torch.argmax(x[g * group:(g + 1) * group]))


# -- the stages -----------------------------------------------------------------------------
@dataclass
class Pool:
    """The tokens a stage works on: logits[i] is the logit of token ids[i] (ids ascending), or of
    token i while ids is None (the whole vocabulary). Top-k makes the pool small, so that the
    stages after it work on k values instead of the whole vocabulary."""
    logits: torch.Tensor
    ids: torch.Tensor | None = None

    def token_ids(self) -> torch.Tensor:
        return self.ids if self.ids is not None else torch.arange(self.logits.numel(), device=self.logits.device)

    def dense(self, vocab: int) -> torch.Tensor:
        """The logits over the whole vocabulary (-inf for a token not in the pool)."""
        if self.ids is None:
            return self.logits
        return torch.full((vocab,), NEG_INF, device=self.logits.device).index_copy_(0, self.ids, self.logits)


@dataclass(frozen=True)
class StageContext:
    """What a stage may need beyond the logits and the settings."""
    history: Sequence[int] = ()                 # the token ids so far, prompt included
    generator: torch.Generator | None = None    # None: a stage that draws (XTC) gives its expected effect
    breaker_ids: Callable[[tuple[str, ...]], frozenset[int]] | None = None   # DRY: tokens holding a breaker


StageFunction = Callable[[Pool, SamplingSettings, StageContext], Pool]
STAGE_FUNCTIONS: dict[str, StageFunction] = {}


def stage(name: str) -> Callable[[StageFunction], StageFunction]:
    """Register the function of the registry's stage `name`."""
    def register(fn: StageFunction) -> StageFunction:
        STAGE_FUNCTIONS[name] = fn
        return fn
    return register


def _masked(pool: Pool, logits: torch.Tensor) -> Pool:
    return Pool(logits, pool.ids)


@stage("repeat_penalty")
def _repeat_penalty_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    recent = ctx.history[-s.repeat_last_n:] if s.repeat_last_n > 0 else ()
    return _by_token(pool, ctx, lambda logits: apply_repeat_penalty(logits, recent, s.repeat_penalty))


@stage("dry")
def _dry_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    if s.dry_multiplier <= 0:
        return pool
    breakers = ctx.breaker_ids(tuple(s.dry_sequence_breakers)) if ctx.breaker_ids else frozenset()
    lengths = dry_repeat_lengths(ctx.history, breakers, s.dry_allowed_length)
    if not lengths:
        return pool
    return _by_token(pool, ctx, lambda logits: apply_dry_penalty(logits, lengths, s.dry_multiplier, s.dry_base,
                                                                 s.dry_allowed_length))


@stage("temperature")
def _temperature_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    if s.temperature <= 0:     # greedy: only the most likely token is left
        best = argmax(pool.logits)
        device = pool.logits.device
        ids = pool.ids[best:best + 1] if pool.ids is not None else torch.tensor([best], device=device)
        return Pool(torch.zeros(1, device=device), ids)
    return _masked(pool, apply_temperature(pool.logits, s.temperature))


@stage("top_k")
def _top_k_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    if not 0 < s.top_k < pool.logits.numel():
        return pool
    # The same tokens as top_k_filter, but the stages after it work on k values, not the vocabulary.
    keep = top_indices(pool.logits, s.top_k).sort().values
    return Pool(pool.logits[keep], pool.token_ids()[keep])


@stage("top_p")
def _top_p_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    return _masked(pool, top_p_filter(pool.logits, s.top_p))


@stage("min_p")
def _min_p_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    return _masked(pool, min_p_filter(pool.logits, s.min_p))


@stage("xtc")
def _xtc_stage(pool: Pool, s: SamplingSettings, ctx: StageContext) -> Pool:
    # As llama.cpp: off at probability 0 or a threshold above 0.5 (then at most one token can
    # reach it), and a number is drawn only when the stage is on, so a seed's replies without XTC
    # stay what they were.
    if s.xtc_probability <= 0 or s.xtc_threshold > 0.5 or int(torch.isfinite(pool.logits).sum()) < 2:
        return pool
    if ctx.generator is None:
        return _masked(pool, xtc_expected(pool.logits, s.xtc_threshold, s.xtc_probability))
    fires = float(torch.rand((), generator=ctx.generator)) < s.xtc_probability
    return _masked(pool, xtc_filter(pool.logits, s.xtc_threshold)) if fires else pool


def _by_token(pool: Pool, ctx: StageContext, change: Callable[[torch.Tensor], torch.Tensor]) -> Pool:
    """Apply a change written for whole-vocabulary logits (indexed by the history's token ids) to
    the pool, whole or not. (The penalties come before top-k, so the pool is whole there.)"""
    if pool.ids is None:
        return _masked(pool, change(pool.logits))
    vocab = max(int(pool.ids.max()) if pool.ids.numel() else -1, max(ctx.history, default=-1)) + 1
    return _masked(pool, change(pool.dense(vocab)).index_select(0, pool.ids))


# A stage declared without a function, or a function for no declared stage, fails at import.
if {st.name for st in SAMPLER_STAGES} != set(STAGE_FUNCTIONS):
    raise RuntimeError("sampler stages and their functions differ: "
                       f"{sorted({st.name for st in SAMPLER_STAGES} ^ set(STAGE_FUNCTIONS))}")


# -- DRY and XTC as pure functions -------------------------------------------------------------
def breaker_token_ids(vocabulary: Sequence[bytes], breakers: Iterable[str]) -> frozenset[int]:
    """The ids of the tokens whose text holds one of the breaker strings. (llama.cpp also treats a
    breaker split over several tokens; here a breaker must lie inside one token, which covers the
    usual single characters such as a newline or a colon.)"""
    needles = [b.encode("utf-8") for b in breakers if b]
    return frozenset(i for i, piece in enumerate(vocabulary) if any(n in piece for n in needles))


def dry_repeat_lengths(history: Sequence[int], breakers: frozenset[int], allowed_length: int) -> dict[int, int]:
    """DRY's repeat lengths: token -> n when emitting the token next would continue a sequence of
    n >= allowed_length tokens that ends the history and appeared before, followed by that token
    (the longest n per token). A repeat does not reach back past a breaker token, and a breaker
    is never penalized.

    As llama.cpp (after koboldcpp): the Z-function of the reversed history gives, for every
    earlier place, how many tokens before it equal the history's last ones, in O(n) however
    repetitive the text (a model stuck in a loop is what DRY is for; comparing from each
    occurrence of the last token would be O(n^2) there)."""
    n = len(history)
    if n < 2:
        return {}
    limit = 0                  # the longest a repeat can be: the tokens after the last breaker
    while limit < n and history[n - 1 - limit] not in breakers:
        limit += 1
    if limit < allowed_length:
        return {}
    r = history[::-1]          # r[k:] starts at history[n - 1 - k], going back
    z = [0] * n                # z[k]: how far r[k:] equals r (capped at limit: all that is needed)
    left = right = 0           # the match box r[left:right] == r[:right - left] reaching furthest
    out: dict[int, int] = {}
    for k in range(1, n):
        length = min(right - k, z[k - left]) if k < right else 0
        while length < limit and k + length < n and r[length] == r[k + length]:
            length += 1
        z[k] = length
        if k + length > right:
            left, right = k, k + length
        follower = history[n - k]          # what came after that earlier place
        if length >= allowed_length and follower not in breakers and length > out.get(follower, 0):
            out[follower] = length
    return out


def apply_dry_penalty(logits: torch.Tensor, lengths: dict[int, int], multiplier: float, base: float,
                      allowed_length: int) -> torch.Tensor:
    """Subtract multiplier * base^(n - allowed_length) from each token's logit (n = its repeat
    length), the exponent capped where float32 would overflow, as llama.cpp does."""
    if not lengths or multiplier == 0:
        return logits
    max_exponent = int(88.7228391 / math.log(base)) if base > 1.000001 else 0
    ids = torch.tensor(list(lengths), dtype=torch.long, device=logits.device)
    penalties = torch.tensor([multiplier * base ** min(n - allowed_length, max_exponent) if max_exponent
                              else multiplier * base ** (n - allowed_length) for n in lengths.values()],
                             dtype=logits.dtype, device=logits.device)
    return logits.index_copy(0, ids, logits.index_select(0, ids) - penalties)


def xtc_filter(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """XTC when it fires: of the tokens at least `threshold` likely, remove all but the least likely
    one (nothing changes unless two or more reach it)."""
    probs = torch.softmax(logits, -1)
    top = probs >= threshold
    if int(top.sum()) < 2:
        return logits
    weakest = probs.masked_fill(~top, float("inf")).argmin()
    return logits.masked_fill(top.index_fill(0, weakest.view(1), False), NEG_INF)


def xtc_expected(logits: torch.Tensor, threshold: float, probability: float) -> torch.Tensor:
    """The distribution XTC draws from on average, as logits: (1 - probability) x the distribution
    as it is + probability x the one xtc_filter leaves (what the inspector shows)."""
    kept = xtc_filter(logits, threshold)
    mixed = (1 - probability) * torch.softmax(logits, -1) + probability * torch.softmax(kept, -1)
    return torch.log(mixed)


# -- applying them ---------------------------------------------------------------------------
def run_stages(logits: torch.Tensor, s: SamplingSettings, ctx: StageContext,
               observe: Callable[[str, Pool], None] | None = None) -> Pool:
    """The pool left after every stage of the registry, in order; observe(stage name, pool) sees
    each stage's result (the inspector's numbers)."""
    pool = Pool(logits.float())
    for st in SAMPLER_STAGES:
        # A filter never removes the most likely token, so one token left (greedy) is final; the
        # torch calls on it would cost ~0.2 ms a token for nothing.
        if st.kind is not StageKind.FILTER or pool.logits.numel() > 1:
            pool = STAGE_FUNCTIONS[st.name](pool, s, ctx)
        if observe is not None:
            observe(st.name, pool)
    return pool


def candidates(logits: torch.Tensor, s: SamplingSettings, history: Sequence[int] = (),
               generator: torch.Generator | None = None,
               breaker_ids: Callable[[tuple[str, ...]], frozenset[int]] | None = None) \
        -> tuple[torch.Tensor, torch.Tensor]:
    """The distribution a token is drawn from under settings s, after `history` (the token ids
    so far), as (ids, probs) of the tokens it can draw, ids ascending. `generator` is the reply's
    (XTC draws from it); without one, XTC's expected effect. Temperature 0: the argmax."""
    pool = run_stages(logits, s, StageContext(history, generator, breaker_ids))
    if pool.logits.numel() == 1:      # greedy: the one token left is drawn
        return pool.token_ids(), torch.ones(1, device=logits.device)
    probs = torch.softmax(pool.logits, -1)
    keep = probs > 0
    ids = pool.token_ids()[keep]
    if not ids.numel():         # NaN logits (a broken model file): no token is drawable
        return torch.tensor([argmax(logits)], device=logits.device), torch.ones(1, device=logits.device)
    return ids, probs[keep]


def logits_to_probs(logits: torch.Tensor, s: SamplingSettings, history: Sequence[int] = (),
                    breaker_ids: Callable[[tuple[str, ...]], frozenset[int]] | None = None) -> torch.Tensor:
    """candidates() as a probability for every token of the vocabulary."""
    ids, probs = candidates(logits, s, history, breaker_ids=breaker_ids)
    return torch.zeros(logits.shape, device=logits.device).index_copy_(0, ids, probs)


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


# -- the inspector's view ----------------------------------------------------------------------
@dataclass(frozen=True)
class TokenStage:
    """One candidate token seen through each sampling stage (for the sampling inspector)."""
    token_id: int
    raw_prob: float                  # softmax of the model's logits
    penalized_prob: float            # after the penalty stages (repetition, DRY)
    temp_prob: float                 # after the last stage that is not a filter (temperature)
    final_prob: float                # the distribution a token is drawn from (0 if filtered out)
    kept: dict[str, bool] = field(default_factory=dict)   # stage name -> still drawable after it


def explain_sampling(logits: torch.Tensor, s: SamplingSettings, history: Sequence[int] = (), top_n: int = 30,
                     breaker_ids: Callable[[tuple[str, ...]], frozenset[int]] | None = None) -> list[TokenStage]:
    """Each stage of candidates() for the top_n most likely tokens (by raw probability): the same
    run of the same functions, watched after every stage, so what the inspector shows is what
    sampling does."""
    logits = logits.float()
    vocab = logits.numel()
    raw = torch.softmax(logits, -1)
    after: dict[str, torch.Tensor] = {}
    run_stages(logits, s, StageContext(history, None, breaker_ids),
               observe=lambda name, pool: after.__setitem__(name, pool.dense(vocab)))
    penalized = temp = logits
    for st in SAMPLER_STAGES:
        if st.kind is StageKind.PENALTY:
            penalized = temp = after[st.name]
        elif st.kind is StageKind.SHAPE:
            temp = after[st.name]
    pen_probs, temp_probs = torch.softmax(penalized, -1), torch.softmax(temp, -1)
    final = logits_to_probs(logits, s, history, breaker_ids)
    kept = {name: torch.isfinite(values) for name, values in after.items()}
    ids = torch.topk(raw, min(top_n, vocab)).indices.tolist()
    return [TokenStage(i, float(raw[i]), float(pen_probs[i]), float(temp_probs[i]), float(final[i]),
                       {name: bool(mask[i]) for name, mask in kept.items()}) for i in ids]

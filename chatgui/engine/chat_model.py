"""ChatModel: a loaded GGUF model with its tokenizer and chat template, ready to chat.

Generation follows gpt-fast's shape: prefill the prompt (reusing the KV cache for whatever prefix
the previous turn already computed), then decode one token at a time, yielding a TokenEvent per
token. Cancellation is checked between any two forward passes.
"""
from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Iterator, Sequence

import torch

from .chat_template import ChatTemplate
from .cores import torch_on_one_thread
from .errors import EngineError, ModelLoadError, PromptTooLongError, TemplateError
from .gguf_file import GGUFFile
from .loader import build_transformer, check_memory, read_model_args
from .model import ModelArgs, Transformer
from .sampling import candidates, draw, make_generator, top_values
from .tokenizer import TokenizerInfo, build_tokenizer, decode_stream
from chatgui.common.io import sha256_file
from chatgui.common.malloc import give_back_freed_memory, share_malloc_arenas
from chatgui.common.prompt import PromptMessage, Role
from chatgui.common.records import LOCAL_CAPABILITIES, FinishReason, ModelInfo
from chatgui.common.types import Alternative, GenerationStats, SamplingSettings, TokenEvent

PREFILL_CHUNK = 128
# When turns must be dropped, the prompt is cut down to this share of the room, so that the next
# turns can begin the same way and reuse what the cache holds (see fit_reply_prompt).
FIT_SLACK = 0.6
DEFAULT_MAX_CONTEXT = 4096   # the KV cache is allocated up front: keep it modest by default


def resolve_device(device: str = "auto") -> torch.device:
    device = (device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("(device)", "CUDA was asked for, but no CUDA GPU is available to PyTorch")
    return torch.device(device)


def available_devices() -> list[str]:
    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class ChatModel:
    """chatgui's own engine behind the ChatBackend interface (chatgui.common.backend)."""
    capabilities = LOCAL_CAPABILITIES

    def __init__(self, path: Path, gguf: GGUFFile, args: ModelArgs, net: Transformer, tok: TokenizerInfo,
                 template: ChatTemplate, device: torch.device, context_length: int):
        self.path = Path(path)
        self.args = args
        self.net = net
        self.tok = tok
        self.template = template
        self.device = device
        self.context_length = context_length
        # The file's name, never general.name (often a training-run label); callers that know the
        # catalog give it its display name (chatgui.models.display_name).
        self.name = self.path.stem
        self._cache_ids: list[int] = []      # the tokens at positions 0..n-1 of the KV cache
        # The passes that computed them, as (start, end) in order (_prefill reuses only positions
        # computed by the passes a fresh computation makes: _schedule)
        self._cache_runs: list[tuple[int, int]] = []
        self._fit_anchor: tuple | None = None   # where the last prompt that dropped turns began (_anchor)
        self._sha256: str | None = None
        self._explainer = None               # next_token.NextTokenExplainer, made on first use
        # A file without a chat template (a base model) is chatted with in ChatML; where its
        # vocabulary has no <|im_end|> token the model can only write the markers as text, and
        # would go on writing the user's next turn too: those texts end a reply (a marker that is
        # a control token is left out of the text, and <|im_end|> as one ends it by its id).
        self.template_stops = tuple(m for m in ("<|im_end|>", "<|im_start|>")
                                    if template.is_fallback and not self._is_special_token(m))

    def info(self) -> ModelInfo:
        return ModelInfo(name=self.name, path=str(self.path), device=str(self.device),
                         context_length=self.context_length, warnings=self.tok.warnings)

    # -- text <-> tokens ------------------------------------------------------------------------
    def _is_special_token(self, text: str) -> bool:
        """Whether text is one token that ends a reply or is left out of its text (a control token)."""
        ids = self.tokenize(text, add_bos=False)
        return len(ids) == 1 and (ids[0] in self.tok.stop_ids or ids[0] in self.tok.special_ids)

    def tokenize(self, text: str, add_bos: bool | None = None) -> list[int]:
        ids = self.tok.tokenizer.encode(text, add_special_tokens=False).ids
        if (self.tok.add_bos if add_bos is None else add_bos) and self.tok.bos_id is not None:
            if not ids or ids[0] != self.tok.bos_id:     # a template may already write BOS
                ids = [self.tok.bos_id] + ids
        return ids

    def detokenize(self, ids: list[int], skip_special: bool = False) -> str:
        return self.tok.tokenizer.decode(list(ids), skip_special_tokens=skip_special)

    def token_text(self, token_id: int) -> str:
        return self.tok.tokenizer.decode([int(token_id)], skip_special_tokens=False)

    def dry_breaker_ids(self, breakers: tuple[str, ...]) -> frozenset[int]:
        """The tokens holding one of DRY's sequence breakers, found once per list of breakers."""
        cache = self.__dict__.setdefault("_dry_breakers", {})
        if breakers not in cache:
            from .sampling import breaker_token_ids
            from .token_bytes import model_vocabulary_bytes
            cache[breakers] = breaker_token_ids(model_vocabulary_bytes(self), breakers)
        return cache[breakers]

    def token_bytes(self, token_id: int) -> bytes:
        from .token_bytes import model_vocabulary_bytes
        return model_vocabulary_bytes(self)[int(token_id)]

    @property
    def file_name(self) -> str:
        return self.path.stem

    @property
    def longest_token_bytes(self) -> int:
        """The most bytes of text one token stands for: a text of more than context_length times
        this cannot fit, which a caller can tell without tokenizing it."""
        from .token_bytes import model_vocabulary_bytes
        return max(map(len, model_vocabulary_bytes(self)), default=1) or 1

    def json_constraint(self, schema: dict | None = None):
        """constrained.json_constraint for this model (ConstraintError, a ValueError, on a bad schema)."""
        from .constrained import json_constraint
        return json_constraint(self, schema)

    def render_chat(self, messages: Sequence[PromptMessage], add_generation_prompt: bool = True) -> str:
        return self.template.render(messages, add_generation_prompt=add_generation_prompt)

    @property
    def sha256(self) -> str:
        """Hash of the model file (computed once, on first use: replay records it)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    # -- forward passes -------------------------------------------------------------------------
    def _feed(self, ids: list[int], start: int, cancel=None, last_only=True, logits=True) -> torch.Tensor | None:
        """Run ids through the model from position start; return the logits (None: cancelled).
        Prompts go in chunks aligned to multiples of PREFILL_CHUNK positions (bounded memory per
        pass); each pass is recorded in _cache_runs. With last_only, only the last chunk
        computes the output head; logits=False: none does, and an empty tensor is returned."""
        out = []
        pos, end = start, start + len(ids)
        while pos < end:
            if cancel is not None and cancel.is_set():
                return None
            stop = min(end, (pos // PREFILL_CHUNK + 1) * PREFILL_CHUNK)
            chunk = ids[pos - start:stop - start]
            x = torch.tensor([chunk], dtype=torch.long, device=self.device)
            chunk_logits = self.net(x, pos, last_only=last_only, logits=not last_only or logits and stop == end)
            del self._cache_ids[pos:]
            self._cache_ids.extend(chunk)
            self._record_run(pos, stop)
            if chunk_logits is not None:
                out.append(chunk_logits[0])
            pos = stop
        if last_only:
            return out[-1][-1] if logits else torch.empty(0)
        return torch.cat(out)

    def _record_run(self, start: int, end: int) -> None:
        """Note that positions [start, end) were computed in one pass (after those before start)."""
        runs = self._cache_runs
        while runs and runs[-1][1] > start:
            runs.pop()
        if runs and runs[-1][1] != start or not runs and start != 0:
            runs.clear()          # (a gap: what came before was never recorded, so nothing is trusted)
        runs.append((start, end))

    def _prefill(self, ids: list[int], cancel=None, prompt_len: int | None = None) -> torch.Tensor | None:
        """The logits after ids, computed the same way whatever the cache holds (issue 33).

        Floating-point sums depend on the shape of the pass that computes them (how many
        positions a matmul or attention call takes: GEMM or GEMV kernels, blockings, the int8
        GEMM's activation scale), so the K/V of a position computed in one prefill chunk differs
        in its last bits from the same position computed alone by the decode step or in a chunk
        of another length, and a near-tie between two tokens then goes the other way: "Say
        hello." gave "Hello! I'm here to help..." cold and "Hello there, welcome..." when the
        whole prompt was cached. So every sequence has one schedule of passes (_schedule): the
        prompt but its last token in chunks aligned to PREFILL_CHUNK positions and ending after
        each end-of-turn token, its last token alone (as the decode step computes a token), then
        each token of a reply prefix alone (as they were decoded). What the cache holds is
        reused only as far as it was computed by the same passes on the same tokens
        (_cache_runs), so a reply is token-identical whether its prompt was cached, partly
        cached or computed fresh, and a seeded Replay or Regenerate gives the same reply again.

        The price: a new turn computes the previous reply again (decoded a token at a time, its
        positions are computed in a chunk in a fresh prompt) with the new message, from the end
        of the previous question's turn; where prepare() computed the chat ahead while the user
        typed, only the new message. A Regenerate reuses the whole prompt but its last token.
        Where a sliding-window cache no longer holds what resuming needs (model.SWA_ROLLBACK),
        or a recurrent layer (deltanet.py) keeps no snapshot there, it resumes at an earlier
        boundary, else at 0.

        prompt_len: how many of ids are the prompt (default all); the rest are a reply's first
        tokens (branching from a chosen token), computed one at a time as they were decoded."""
        n = len(ids)
        prompt_len = n if prompt_len is None else max(1, min(prompt_len, n))
        common = 0
        for a, b in zip(self._cache_ids, ids[:-1]):
            if a != b:
                break
            common += 1
        done = set(self._cache_runs)
        schedule = list(_schedule(ids, prompt_len, self.tok.stop_ids))
        resume = 0
        for run in schedule:
            if run not in done or run[1] > common:
                break
            if self.net.resumable(run[1]):
                resume = run[1]
        del self._cache_ids[resume:]
        logits = None
        for i, (start, end) in enumerate(schedule):
            if start >= resume:
                last = i == len(schedule) - 1
                out = self._feed(ids[start:end], start, cancel, logits=last)
                if out is None:
                    return None
                logits = out if last else None
        return logits

    def prepare(self, messages: Sequence[PromptMessage], max_new_tokens: int, cancel=None) -> int:
        """Compute the cache for the chat's next turn before it is asked: every message so far,
        fitted as the next reply's prompt will be (fit_reply_prompt keeps that start), so that
        sending then computes only the new message. In a long chat that is the difference between
        seconds and a minute before the first word. Stops when `cancel` is set, keeping what was
        computed. Returns how many positions the cache now holds."""
        # the next turn shares everything before its text (a chat ending with a question: all of it)
        upcoming = messages if messages and messages[-1].role is Role.USER else [*messages, PromptMessage.user("")]
        try:
            ids, _dropped = self.fit_reply_prompt(upcoming, max_new_tokens, cancel)
        except (PromptFitCancelled, PromptTooLongError):
            return len(self._cache_ids)   # stopped, or nothing that fits: the reply will say so
        self._prefill(ids, cancel)
        return len(self._cache_ids)

    def logprobs(self, ids: list[int]) -> torch.Tensor:
        """[len(ids), vocab] float32 on the CPU: log-softmax of the next-token logits, one pass."""
        if len(ids) > self.context_length:
            raise PromptTooLongError(f"{len(ids)} tokens exceed the context length {self.context_length}")
        self._cache_ids = []
        logits = self._feed(list(ids), 0, last_only=False)
        return torch.log_softmax(logits.float(), -1).cpu()

    def prompt_logprobs(self, ids: list[int], k: int) -> list[tuple[float, list[tuple[float, int]]]]:
        """For each position p >= 1: (log-probability of ids[p] after ids[:p], the k most likely
        ids there as (logprob, id)). PREFILL_CHUNK positions at a time, keeping only these
        numbers: logprobs() holds len(ids) x vocab floats (twice, with the log-softmax), which a
        server client asking for echo could make gigabytes (1,500 tokens on SmolLM2: +873 MB peak,
        here +162 MB)."""
        if len(ids) > self.context_length:
            raise PromptTooLongError(f"{len(ids)} tokens exceed the context length {self.context_length}")
        self._cache_ids = []
        out: list[tuple[float, list[tuple[float, int]]]] = []
        targets = torch.tensor(list(ids[1:]), dtype=torch.long)
        for pos in range(0, len(ids) - 1, PREFILL_CHUNK):
            stop = min(len(ids), pos + PREFILL_CHUNK)
            lp = torch.log_softmax(self._feed(list(ids[pos:stop]), pos, last_only=False).float(), -1).cpu()
            rows = min(stop, len(ids) - 1) - pos            # the last position predicts nothing here
            chosen = lp[torch.arange(rows), targets[pos:pos + rows]].tolist()
            vals, idx = lp[:rows].topk(k) if k else (torch.zeros(rows, 0), torch.zeros(rows, 0, dtype=torch.long))
            out.extend((c, list(zip(v, i))) for c, v, i in zip(chosen, vals.tolist(), idx.tolist()))
            del lp
        return out

    def next_token_logits(self, messages: Sequence[PromptMessage], reply_prefix_ids=(),
                          dropped_messages: int | None = None) -> torch.Tensor:
        """Raw logits for the token that would follow the conversation, or follow the first
        tokens of a reply (for the sampling inspector), with the prompt a reply gets (or got:
        dropped_messages)."""
        ids = self.inspected_prompt(messages, len(reply_prefix_ids), dropped_messages)
        return self.logits_after(ids + [int(t) for t in reply_prefix_ids], prompt_len=len(ids))

    def logits_after(self, ids: list[int], prompt_len: int | None = None) -> torch.Tensor:
        """Raw logits for the token after these ids (the cached prefix reused), of which the
        first prompt_len (default all) are the prompt and the rest a reply's first tokens: the
        numbers the reply's own token there was drawn from (_prefill)."""
        return self._prefill(ids, prompt_len=prompt_len).float().cpu()

    def inspected_prompt(self, messages: Sequence[PromptMessage], prefix_len: int = 0,
                         dropped_messages: int | None = None) -> list[int]:
        """The prompt ids a reply to `messages` gets (fit_reply_prompt), or the one an earlier reply
        got when it dropped `dropped_messages`."""
        return self.fit_reply_prompt(messages, 1 + prefix_len, same_as=dropped_messages)[0]

    def explain_next_token(self, messages: Sequence[PromptMessage], prefix_ids=(), sampling: dict | None = None,
                           chosen_id: int | None = None, top_n: int = 30, dropped_messages: int | None = None) -> dict:
        """The sampling inspector's data for the token after messages (+ prefix_ids): see
        next_token.py. The position's logits are cached on this model. dropped_messages: the
        turns the inspected reply's prompt dropped (the same prompt again)."""
        if self._explainer is None:
            from .next_token import NextTokenExplainer
            self._explainer = NextTokenExplainer(self)
        return self._explainer.explain(messages, prefix_ids, sampling, chosen_id, top_n, dropped_messages)

    # -- prompts --------------------------------------------------------------------------------
    def fit_reply_prompt(self, messages: Sequence[PromptMessage], max_new_tokens: int, cancel=None,
                         same_as: int | None = None) -> tuple[list[int], int]:
        """The prompt for a reply: fit_prompt, but when old turns must go, the start is chosen so
        the next turns can keep it. Dropping exactly what no longer fits would move the start at
        every turn of a long chat, so no prompt would begin like the last one and the whole
        context would be computed again each time (a minute at 4k tokens on a small CPU). So:
        the start used last time is kept while the chat still fits from it, and a new start
        leaves the prompt at FIT_SLACK of the room (llama.cpp's context shift drops half).
        `same_as`: the number of messages an earlier reply to these messages dropped (a replay or
        a branch of it): the same start again when it fits, so the prompt is the same."""
        ids, dropped = self.fit_prompt(messages, max_new_tokens, cancel)
        room = self._room(max_new_tokens)
        if same_as is not None and same_as >= dropped:
            try:
                again = self.fit_prompt(messages, max_new_tokens, cancel, drop=same_as)
                if len(again[0]) <= room:
                    return again
            except ValueError:   # not a turn's start in these messages
                pass
        if dropped == 0:
            return ids, 0
        kept = self._fit_anchor
        if kept is not None and kept[0] >= dropped and _anchor(messages, kept[0]) == kept:
            try:
                ids, dropped = self.fit_prompt(messages, max_new_tokens, cancel, drop=kept[0])
                if len(ids) <= room:
                    return ids, dropped
            except ValueError:   # not a turn's start any more
                pass
        ids, dropped = self.fit_prompt(messages, max_new_tokens, cancel, room=int(room * FIT_SLACK))
        self._fit_anchor = _anchor(messages, dropped)
        return ids, dropped

    def fit_prompt(self, messages: Sequence[PromptMessage], max_new_tokens: int, cancel=None, room: int | None = None,
                   drop: int | None = None) -> tuple[list[int], int]:
        """Token ids of the rendered chat, dropping the oldest turns (never the system prompt)
        until the prompt plus max_new_tokens fits the context. Returns (ids, dropped count).

        The work grows with the context, not with the chat: texts are counted from the newest
        back (counts kept per text) only until they alone are twice the budget, the turns to drop
        are chosen by arithmetic on those counts, and only prompts about the size of the context
        are rendered to check the choice exactly. The result is the one dropping turn by turn
        gives. A chat whose texts could fit is rendered whole first, as before.
        `cancel` (a threading.Event) set while fitting raises PromptFitCancelled. `room`: fit in
        fewer tokens than the context leaves (at least the last turn is kept all the same);
        `drop`: drop exactly that many messages after the system prompt (a turn's start).
        """
        messages = [m.text_only() for m in messages]
        system = [m for m in messages[:1] if m.role is Role.SYSTEM]
        rest = messages[len(system):]
        budget = self._room(max_new_tokens)
        if room is not None:
            budget = min(budget, room)
        rendered: dict[int, list[int]] = {}   # exact ids of system + rest[cut:], by cut

        def ids_from(cut: int) -> list[int]:
            if cut not in rendered:
                _check_cancel(cancel)
                rendered[cut] = self.tokenize(self.render_chat(system + rest[cut:]))
            return rendered[cut]

        cuts = _turn_starts(rest)
        if drop is not None:
            if drop not in cuts:
                raise ValueError(f"message {drop} does not start a turn")
            return self._checked_prompt(ids_from(drop)), drop
        first, counts = self._newest_counts(rest, 2 * budget, cancel)   # counts of rest[first:]
        if first == 0 and sum(counts) <= 2 * budget or len(cuts) == 1:
            # Could fit (texts alone are not twice the budget): the whole chat, exactly as before.
            if len(ids_from(0)) <= budget or len(cuts) == 1:
                return self._checked_prompt(ids_from(0)), 0
        # Template tokens per message, measured on the newest turn (rendered anyway if all else goes).
        tail = cuts[-1]
        per_message = max(0.0, (len(ids_from(tail)) - sum(counts[tail - first:])) / (len(rest) - tail))
        left = sum(counts) + per_message * (len(rest) - first)   # estimated tokens from `first` on
        j, at = len(cuts) - 1, first
        for k, cut in enumerate(cuts):  # the first cut whose estimate fits (cuts before `first` cannot)
            if cut < first:
                continue
            left -= sum(counts[at - first:cut - first]) + per_message * (cut - at)
            at = cut
            if left <= budget:
                j = k
                break
        j = max(j, 1)
        while j < len(cuts) - 1 and len(ids_from(cuts[j])) > budget:  # the estimate kept too much
            j += 1
        while j > 1 and len(ids_from(cuts[j - 1])) <= budget:       # ... or dropped too much
            j -= 1
        return self._checked_prompt(ids_from(cuts[j])), cuts[j]

    def _room(self, max_new_tokens: int) -> int:
        """The prompt's share of the context: what the reply may need is kept free (at most half)."""
        return self.context_length - max(1, min(max_new_tokens, self.context_length // 2))

    def _newest_counts(self, messages: Sequence[PromptMessage], enough: int, cancel=None) -> tuple[int, list[int]]:
        """(first, counts): the token counts of messages[first:], counted from the newest back
        until they pass `enough` tokens or every message is counted."""
        first, total = len(messages), 0
        while first > 0 and total <= enough:
            lo = max(0, first - 64)
            total += sum(self._content_counts(messages[lo:first], cancel))
            first = lo
        return first, self._content_counts(messages[first:])

    def _checked_prompt(self, ids: list[int]) -> list[int]:
        if len(ids) >= self.context_length:
            raise PromptTooLongError(
                f"The message is too long for this model's context: {len(ids)} tokens, the limit is "
                f"{self.context_length}. Shorten it or raise the context length in the settings.")
        return ids

    def _content_counts(self, messages: Sequence[PromptMessage], cancel=None) -> list[int]:
        """Tokens of each message's text alone, remembered per text: the next turn of a long
        chat only tokenizes what is new."""
        cache: dict[str, int] = self.__dict__.setdefault("_count_cache", {})
        missing = list({m.content for m in messages if m.content not in cache})
        for i in range(0, len(missing), 256):
            _check_cancel(cancel)
            batch = missing[i:i + 256]
            for text, enc in zip(batch, self.tok.tokenizer.encode_batch(batch, add_special_tokens=False)):
                cache[text] = len(enc.ids)
        counts = [cache[m.content] for m in messages]
        if len(cache) > 50_000:  # many chats over a long session: start afresh
            cache.clear()
        return counts

    def count_tokens(self, messages: Sequence[PromptMessage]) -> int:
        """Tokens of the rendered chat: exact while the chat could fit the context; for a chat
        over twice the context, an estimate (the newest texts counted, older ones by their length)."""
        messages = [m.text_only() for m in messages]
        first, counts = self._newest_counts(messages, 2 * self.context_length)
        if first == 0 and sum(counts) <= 2 * self.context_length or len(messages) < 2:
            return len(self.tokenize(self.render_chat(messages)))
        # Template tokens: one message costs fixed + per, two cost fixed + 2 per.
        try:
            one = len(self.tokenize(self.render_chat(messages[-1:]))) - counts[-1]
            two = len(self.tokenize(self.render_chat(messages[-2:]))) - counts[-1] - counts[-2]
        except TemplateError:  # a template that wants the whole conversation: count it whole
            return len(self.tokenize(self.render_chat(messages)))
        per, fixed = max(0, two - one), max(0, 2 * one - two)
        counted_chars = sum(len(m.content) for m in messages[first:]) or 1
        older_chars = sum(len(m.content) for m in messages[:first])
        older = round(older_chars * sum(counts) / counted_chars)
        return sum(counts) + older + per * len(messages) + fixed

    # -- generation -----------------------------------------------------------------------------
    def generate(self, messages: Sequence[PromptMessage], settings: SamplingSettings | None = None, cancel=None,
                 ignore_eos: bool = False, reply_prefix_ids=(), **options) -> "Generation":
        """Stream a reply. reply_prefix_ids: tokens the reply starts with (branching from a chosen
        token); events come only for the tokens after them. ignore_eos keeps going past
        end-of-turn (benchmarks only). options: prompt_ids (continue these tokens instead of a
        rendered chat; messages is then ignored), top_alternatives (how many alternatives each
        TokenEvent carries, default 5), constraint (constrained.json_constraint: structured output),
        dropped_messages (the turns an earlier reply dropped: a replay or branch of it uses the same
        prompt, see fit_reply_prompt)."""
        settings = settings or SamplingSettings()
        if settings.json_reply and options.get("constraint") is None:
            options["constraint"] = self.json_constraint()   # "Reply as JSON": any JSON object
        return Generation(self, messages, settings, cancel, ignore_eos, reply_prefix_ids, **options)

    def generate_candidates(self, messages: Sequence[PromptMessage], settings: SamplingSettings, n: int, cancel=None,
                            **options):
        """n answers to the same chat, decoded together (engine/batch.py); candidate i uses seed + i.
        options as generate's (prompt_ids, top_alternatives, constraint)."""
        from .batch import generate_batch
        settings = settings or SamplingSettings()
        if settings.json_reply and options.get("constraint") is None:
            options["constraint"] = self.json_constraint()
        return generate_batch(self, messages, settings, n, cancel, **options)

    def _alternatives(self, probs: torch.Tensor, k: int = 5, ids: torch.Tensor | None = None) \
            -> tuple[Alternative, ...]:
        """The k most likely tokens of probs over the vocabulary, or over ids where given."""
        vals, idx = top_values(probs, k)
        if ids is not None:
            idx = ids[idx]
        return tuple(Alternative(i, self.token_text(i), v) for v, i in zip(vals.tolist(), idx.tolist()) if v > 0)


class Generation:
    """Iterate for TokenEvents. `stats` fills in as it runs; `dropped_messages` is known at once.
    When iteration ends, `text` is the whole reply (it may end with text held back while it
    looked like the start of a stop string, which no event carried)."""

    def __init__(self, model: ChatModel, messages: Sequence[PromptMessage], settings: SamplingSettings, cancel=None,
                 ignore_eos: bool = False, reply_prefix_ids=(), prompt_ids=None, top_alternatives: int = 5,
                 constraint=None, dropped_messages: int | None = None):
        self.model, self.settings, self.cancel = model, settings, cancel
        self.top_alternatives = top_alternatives
        self.constraint = constraint        # e.g. constrained.JsonConstraint: masks what may come next
        self.stop_ids = frozenset() if ignore_eos else model.tok.stop_ids
        self.stops = reply_stops(model, settings, prompt_ids, ignore_eos)
        seed = settings.seed if settings.seed is not None else secrets.randbits(63)
        self.reply_prefix = [int(t) for t in reply_prefix_ids]
        if prompt_ids is not None:
            self.prompt_ids, dropped = fit_prompt_ids(model, prompt_ids), 0
        else:
            self.prompt_ids, dropped = model.fit_reply_prompt(messages, settings.max_new_tokens + len(self.reply_prefix),
                                                              same_as=dropped_messages)
        room = model.context_length - len(self.prompt_ids) - len(self.reply_prefix)
        self.max_new = max(0, min(settings.max_new_tokens, room))
        self.stats = GenerationStats(prompt_tokens=len(self.prompt_ids), dropped_messages=dropped, seed=seed)
        self.text = ""                      # the whole reply so far, reply prefix included
        self.token_ids: list[int] = list(self.reply_prefix)
        self._it = self._run()

    @property
    def dropped_messages(self) -> int:
        return self.stats.dropped_messages

    def __iter__(self) -> Iterator[TokenEvent]:
        return self

    def __next__(self) -> TokenEvent:
        # Each step with torch on this thread alone where the native kernels have the cores:
        # the sampling's softmax over the vocabulary would otherwise leave torch's workers
        # spinning into the next step's products (cores.py).
        with torch_on_one_thread(self.model.net.kernels_own_cores):
            return next(self._it)

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _run(self) -> Iterator[TokenEvent]:
        m, s, st = self.model, self.settings, self.stats
        gen = make_generator(st.seed)
        t0 = time.perf_counter()
        logits = m._prefill(self.prompt_ids + self.reply_prefix, self.cancel, prompt_len=len(self.prompt_ids))
        if logits is None:
            st.finish_reason = FinishReason.CANCELLED
            return
        stream = decode_stream(m.tok.tokenizer)
        self.text = "".join(stream.step(m.tok.tokenizer, t) or "" for t in self.reply_prefix)
        held = ""                  # text held back because it may be the start of a stop string
        history = self.prompt_ids + self.reply_prefix
        t_first = None
        st.finish_reason = FinishReason.LENGTH
        hit = False
        first = len(self.reply_prefix)
        for i in range(first, first + self.max_new):
            raw = torch.softmax(logits.float(), -1)
            if self.constraint is not None:
                logits = self.constraint.mask(logits)
                if self.constraint.failed:      # the grammar engine gave up: what came is not the JSON asked for
                    break
            ids, probs = candidates(logits, s, history, gen, m.dry_breaker_ids)
            pick = draw(probs, gen)
            tid = int(ids[pick])
            if tid in self.stop_ids:
                st.finish_reason = FinishReason.STOP
                break
            if self.constraint is not None:
                self.constraint.advance(tid)
            history.append(tid)
            self.token_ids.append(tid)
            piece = stream.step(m.tok.tokenizer, tid) or ""
            text, held, hit = _split_stop(held + piece, self.stops)
            self.text += text
            if t_first is None:
                t_first = time.perf_counter()
                st.time_to_first_token = t_first - t0
            st.generated_tokens = i + 1 - first
            yield TokenEvent(i, tid, text, float(raw[tid]), m._alternatives(raw, self.top_alternatives),
                             float(probs[pick]), m._alternatives(probs, ids=ids))
            if hit:
                st.finish_reason = FinishReason.STOP_STRING
                break
            if self._cancelled():
                st.finish_reason = FinishReason.CANCELLED
                break
            if i + 1 < first + self.max_new:
                logits = m._feed([tid], len(history) - 1)
        if self.constraint is not None and self.constraint.failed and st.finish_reason != "cancelled":
            st.finish_reason, st.extra["error"] = FinishReason.ERROR, self.constraint.failed
        if not hit:
            # The whole reply, including a partial stop-string match that never completed and
            # bytes of a character the model never finished (shown as U+FFFD), which the
            # UTF-8-safe stream rightly held back.
            self.text = m.detokenize(self.token_ids, skip_special=True)
        if t_first is not None and st.generated_tokens > 1:
            st.tokens_per_second = (st.generated_tokens - 1) / max(time.perf_counter() - t_first, 1e-9)


class PromptFitCancelled(EngineError):
    """fit_prompt stopped because its cancel event was set."""


def _check_cancel(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise PromptFitCancelled("cancelled while fitting the prompt")


def _anchor(messages: Sequence[PromptMessage], drop: int) -> tuple:
    """What identifies a prompt's start: how many messages were dropped, the system prompt, and
    the first kept message (the later turns only add to the end)."""
    system = messages[0].content if messages and messages[0].role is Role.SYSTEM else None
    rest = messages[1:] if system is not None else messages
    first = (rest[drop].role, rest[drop].content) if drop < len(rest) else None
    return drop, system, first


def _turn_starts(rest: Sequence[PromptMessage]) -> list[int]:
    """Where the oldest turns end, in dropping order: 0 (nothing dropped), then after each turn
    (a user message and every reply up to the next user message), never past the last message."""
    cuts = [0]
    while cuts[-1] < len(rest) - 1:
        n = cuts[-1] + 1
        while n < len(rest) - 1 and rest[n].role is not Role.USER:
            n += 1
        cuts.append(n)
    return cuts


def fit_prompt_ids(model: ChatModel, ids) -> list[int]:
    """Raw prompt tokens (no chat template), which must leave room for one new token."""
    ids = [int(t) for t in ids]
    if not ids or len(ids) >= model.context_length:
        raise PromptTooLongError(
            f"The prompt is too long for this model's context: {len(ids)} tokens, the limit is "
            f"{model.context_length}." if ids else "The prompt is empty.")
    return ids


def _schedule(ids: list[int], prompt_len: int, turn_ends=frozenset()) -> Iterator[tuple[int, int]]:
    """The passes (start, end) that compute ids, whose first prompt_len are the prompt, whatever
    the cache holds (ChatModel._prefill): the prompt but its last token in chunks that end at
    multiples of PREFILL_CHUNK (as _feed cuts them) and after each end-of-turn token (turn_ends),
    then one position at a time. Ending a pass where a message ends is what lets the next turn
    reuse the chat up to its previous message: a pass ends there whichever prompt it is part of."""
    pos, last = 0, prompt_len - 1
    while pos < last:
        stop = min(last, (pos // PREFILL_CHUNK + 1) * PREFILL_CHUNK)
        stop = next((p + 1 for p in range(pos, stop) if ids[p] in turn_ends), stop)
        yield pos, stop
        pos = stop
    for pos in range(max(0, last), len(ids)):
        yield pos, pos + 1


def reply_stops(model: ChatModel, settings: SamplingSettings, prompt_ids=None, ignore_eos: bool = False) \
        -> tuple[str, ...]:
    """The texts that end a reply: the settings' stop strings, and for a chat rendered with the
    fallback template, its markers that are not tokens (ChatModel.template_stops; not where the
    end of turn is ignored, as it is by benchmarks)."""
    return tuple(settings.stop) + (model.template_stops if prompt_ids is None and not ignore_eos else ())


def _split_stop(text: str, stops) -> tuple[str, str, bool]:
    """Split text into (safe to show, held back, stop string found)."""
    stops = [x for x in stops if x]
    if not stops:
        return text, "", False
    found = [j for j in (text.find(x) for x in stops) if j >= 0]
    if found:                   # the earliest, whichever stop it is
        return text[:min(found)], "", True
    keep = 0
    for x in stops:    # the longest tail of text that starts some stop string
        for n in range(min(len(x) - 1, len(text)), 0, -1):
            if x.startswith(text[-n:]):
                keep = max(keep, n)
                break
    return text[:len(text) - keep], text[len(text) - keep:], False


def load_model(path, device: str = "auto", context_length: int | None = None, precision: str = "auto") -> ChatModel:
    """Load a GGUF chat model. Raises ModelLoadError (naming the file and reason) on bad files.

    precision "auto" keeps weights compact (int4 / bfloat16: fast); "float32" runs the plain
    dequantized weights (the numerical reference)."""
    share_malloc_arenas()
    gf = GGUFFile(path)
    try:
        args = read_model_args(gf)
        # Checked before the tokenizer is built: 10M tokens cost it 30 s and 3.5 GB.
        if len(gf.get("tokenizer.ggml.tokens")) > args.vocab_size:
            raise ModelLoadError(gf.path, "the tokenizer has more tokens than the model's output layer")
        tok = build_tokenizer(gf.metadata, gf.path)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        # Metadata of an unexpected shape that no check above named: still the file's fault,
        # said as such (`chatgui serve` prints a ModelLoadError, not a traceback).
        raise ModelLoadError(gf.path, f"its metadata is malformed ({type(e).__name__}: {e})") from e
    # Building the tokenizer frees many small pieces (a gpt2 vocabulary's texts and merges as
    # Python objects, handed to `tokenizers`); given back now, they would otherwise sit in the
    # heap under the weights.
    give_back_freed_memory()
    tokens = gf.get("tokenizer.ggml.tokens")
    bos = tokens[tok.bos_id] if tok.bos_id is not None else ""
    eos = tokens[tok.eos_id] if tok.eos_id is not None else ""
    try:
        template = ChatTemplate(gf.get("tokenizer.chat_template"), bos, eos)
    except TemplateError as e:
        raise ModelLoadError(gf.path, str(e)) from e
    ctx = min(context_length or DEFAULT_MAX_CONTEXT, args.train_context)
    ctx = max(ctx, 16)
    dev = resolve_device(device)
    if dev.type == "cpu":
        check_memory(gf, args, ctx, precision)
    try:
        net = build_transformer(gf, args, dev, ctx, precision)
    except torch.cuda.OutOfMemoryError as e:
        raise ModelLoadError(gf.path, "the GPU ran out of memory while loading the model") from e
    return ChatModel(gf.path, gf, args, net, tok, template, dev, ctx)

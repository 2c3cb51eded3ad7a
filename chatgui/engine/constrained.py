"""Structured output: a reply that is JSON (and, given a schema, valid against it), by masking
the logits of every token the grammar does not allow at that point. No Qt.

    constraint = json_constraint(model, schema)     # schema None: any JSON object
    gen = model.generate(messages, settings, constraint=constraint)

The grammar engine is llguidance (MIT; no dependencies; computes each token's mask on the fly
from the tokenizer's byte vocabulary, so a schema compiles in milliseconds and no index over
the vocabulary is built up front). It was chosen over xgrammar (needs transformers, triton and
tvm-ffi) and outlines-core (builds a regex index over the whole vocabulary per schema, and
"any JSON" is no regular language); benchmarks/bench_structured.py measures the mask cost.
"""
from __future__ import annotations

import json

import numpy as np
import torch

from .token_bytes import model_vocabulary_bytes


class ConstraintError(ValueError):
    """The schema is not one we can constrain to (invalid, or beyond the grammar library)."""


# Any JSON object (response_format json_object): what OpenAI promises for that mode.
ANY_OBJECT = {"type": "object"}
_NEG_INF = np.float32(-np.inf)


class _VocabularyForLL:
    """The tokenizer as llguidance's TokenizerWrapper expects it."""

    def __init__(self, model):
        self.tokens = model_vocabulary_bytes(model)
        n = model.args.vocab_size
        self.tokens = self.tokens + [b""] * (n - len(self.tokens))
        stop = sorted(model.tok.stop_ids)
        self.eos_token_id = model.tok.eos_id if model.tok.eos_id is not None else (stop[0] if stop else 0)
        self.bos_token_id = model.tok.bos_id
        self.special_token_ids = sorted(model.tok.special_ids)
        self._tokenizer = model.tok.tokenizer

    def __call__(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids


def _ll_tokenizer(model):
    """llguidance's tokenizer for a model, built once per model object (~0.1 s)."""
    cached = getattr(model, "_ll_tokenizer", None)
    if cached is None:
        import llguidance

        vocab = _VocabularyForLL(model)
        cached = llguidance.LLTokenizer(llguidance.TokenizerWrapper(vocab), n_vocab=len(vocab.tokens),
                                        eos_token=sorted(model.tok.stop_ids) or None)
        model._ll_tokenizer = cached
    return cached


def json_constraint(model, schema: dict | None = None) -> "JsonConstraint":
    """A constraint for replies that parse as JSON, matching schema if given. Raises
    ConstraintError naming what is wrong with the schema."""
    import llguidance

    if schema is not None and not isinstance(schema, dict):
        raise ConstraintError("the schema must be a JSON object")
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(schema if schema is not None else ANY_OBJECT),
            defaults={"whitespace_flexible": False, "coerce_one_of": True})
    except (ValueError, TypeError) as e:
        raise ConstraintError(str(e)) from None
    tokenizer = _ll_tokenizer(model)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if is_error:
        raise ConstraintError(messages[0] if messages else "the schema cannot be compiled")
    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    problem = _first_steps_fail(matcher, model.args.vocab_size)
    if problem:
        raise ConstraintError(f"the schema is too complex for the grammar engine ({problem})")
    return JsonConstraint(matcher, model.args.vocab_size)


PROBE_FORCED_STEPS = 64     # tokens followed while the grammar allows only one
PROBE_BRANCHES = 8          # at the first choice, how many of the allowed tokens are tried one step


def _first_steps_fail(matcher, vocab_size: int) -> str | None:
    """Why the grammar breaks within its first tokens, or None. llguidance compiles some schemas
    it cannot follow (an anyOf of thousands of objects, a property that must recur for ever): its
    parser gives up past a limit once the first token is fed, and then allows only the end token,
    so the reply would be a lone `{` reported as complete. A dry run on a copy finds that before
    any generation: the forced tokens, then one step down each of a few allowed branches."""
    probe = matcher.deep_copy()
    bits = np.zeros((vocab_size + 31) // 32, dtype=np.int32)

    def allowed_ids(m) -> np.ndarray:
        m.unsafe_compute_mask_ptr(bits.ctypes.data, bits.nbytes)
        return np.flatnonzero(np.unpackbits(bits.view(np.uint8), bitorder="little", count=vocab_size))

    for _ in range(PROBE_FORCED_STEPS):
        ids = allowed_ids(probe)
        if probe.is_error():
            return failure_summary(probe.get_error())
        if len(ids) != 1 or probe.is_stopped():
            break
        probe.consume_token(int(ids[0]))
        if probe.is_error():
            return failure_summary(probe.get_error())
    else:
        return None
    for tid in ids[:PROBE_BRANCHES]:
        branch = probe.deep_copy()
        branch.consume_token(int(tid))
        if not branch.is_error():
            allowed_ids(branch)
        if branch.is_error():
            return failure_summary(branch.get_error())
    return None


def failure_summary(error: str) -> str:
    """llguidance's error without the parser state it appends (dozens of lines)."""
    return (error or "the grammar engine failed").split("\n<state>", 1)[0].strip().splitlines()[0]


class JsonConstraint:
    """One reply's grammar state. `fresh()` gives another at the start (one per candidate)."""

    def __init__(self, matcher, vocab_size: int):
        self._start = matcher
        self._matcher = matcher.deep_copy()
        self.vocab_size = vocab_size
        self._bits = np.zeros((vocab_size + 31) // 32, dtype=np.int32)   # llguidance writes the mask here

    def fresh(self) -> "JsonConstraint":
        return JsonConstraint(self._start, self.vocab_size)

    def _allowed(self) -> np.ndarray:
        self._matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        return np.unpackbits(self._bits.view(np.uint8), bitorder="little", count=self.vocab_size).view(bool)

    def allowed(self) -> torch.Tensor:
        """A bool tensor [vocab_size]: which tokens may come next."""
        return torch.from_numpy(self._allowed())

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """logits with every token the grammar forbids at -inf (a new tensor). On the CPU in
        numpy, single-threaded: torch's two-thread masked_fill over the vocabulary was tens of
        times slower on a busy machine (its threads wait for each other)."""
        allowed = self._allowed()[:logits.shape[-1]]
        if logits.device.type == "cpu":
            return torch.from_numpy(np.where(allowed, logits.float().numpy(), _NEG_INF))
        return logits.masked_fill(torch.from_numpy(~allowed).to(logits.device), float("-inf"))

    def advance(self, token_id: int) -> None:
        self._matcher.consume_token(int(token_id))

    @property
    def failed(self) -> str | None:
        """Why the grammar state broke (a forbidden token was fed, or the parser gave up past one
        of its limits), in one line, or None. A reply whose constraint failed is not valid JSON."""
        return failure_summary(self._matcher.get_error()) if self._matcher.is_error() else None

    @property
    def finished(self) -> bool:
        """The value is complete and nothing more may follow (only an end token)."""
        return self._matcher.is_stopped()

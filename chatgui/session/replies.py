"""A reply's metadata, assembled where the runner reports it and read where the window records it.

The runner thread hands the window a finished reply as a plain dict, the reply's stored meta
(ReplyMeta.to_dict()) plus its whole "text" (finished_payload); `read_finished` types it again.
The other rules: what a stopped or failed reply records, and which statistics of a batch of
answers the status bar shows.
"""
from __future__ import annotations

from chatgui.common.records import FinishReason, ModelInfo, ReplyMeta
from chatgui.common.types import GenerationStats, SamplingSettings

TEXT_KEY = "text"   # the finished payload's whole reply, beside the meta's own keys


def assemble_reply_meta(info: ModelInfo, context_length: int, stats: GenerationStats, token_count: int,
                        settings: SamplingSettings, model_sha256: str | None = None) -> ReplyMeta:
    """What a finished reply records: its settings and seed, the model (a file's path and hash;
    a server's public settings, never a key), the prompt and reply sizes, why it ended, its speed.
    token_count: the tokens the reply holds; a server's own count (its usage report, or the
    chunks) is used for a remote reply."""
    meta = ReplyMeta(sampling=settings.to_dict(), seed=stats.seed, model=info.name, device=info.device,
                     prompt_tokens=stats.prompt_tokens, tokens=token_count,
                     dropped_messages=stats.dropped_messages, finish_reason=stats.finish_reason,
                     time_to_first_token=round(stats.time_to_first_token, 4),
                     tokens_per_second=round(stats.tokens_per_second, 3), context_length=context_length)
    if stats.extra.get("error"):      # e.g. the JSON grammar engine gave up: the message says "failed"
        meta.error = str(stats.extra["error"])
    if info.is_local:
        meta.model_path, meta.model_sha256 = info.path, model_sha256
    else:
        meta.tokens = stats.generated_tokens
        meta.usage_reported = bool(stats.extra.get("usage_reported"))
        meta.backend = info.backend
    return meta


def finished_payload(meta: ReplyMeta, text: str) -> dict:
    return {**meta.to_dict(), TEXT_KEY: text}


def read_finished(payload: object) -> tuple[ReplyMeta, str | None]:
    """(the reply's meta, its whole text or None) from a finished payload."""
    data = dict(payload) if isinstance(payload, dict) else {}
    text = data.pop(TEXT_KEY, None)
    return ReplyMeta.from_dict(data), text if isinstance(text, str) else None


def stopped_meta(reported: ReplyMeta, tokens_kept: int) -> ReplyMeta:
    """A reply stopped by the user: the worker's statistics, marked cancelled, with the tokens the
    window kept (a remote reply keeps no token records: then the worker's count stands)."""
    reported.finish_reason = FinishReason.CANCELLED
    reported.tokens = tokens_kept or reported.tokens or 0
    return reported


def failed_meta(error: str, tokens: int | None = None) -> ReplyMeta:
    """A reply that broke off after some text: that text is kept, marked as failed."""
    return ReplyMeta(finish_reason=FinishReason.ERROR, error=error, tokens=tokens)


def faster(candidate: ReplyMeta, kept: ReplyMeta | None) -> bool:
    """Of a batch's answers, the statistics to show are those with a speed: an answer that ends
    before the others has none yet (the batch measures it at its end)."""
    return kept is None or (candidate.tokens_per_second or 0) >= (kept.tokens_per_second or 0)

"""A `tokenizers` tokenizer built from GGUF metadata, matching llama.cpp's tokenization.

gpt2-style byte-level BPE: pre-tokenizer regexes follow the name in `tokenizer.ggml.pre`, as
llama.cpp does. Control and user-defined tokens are matched whole in text, so `<|im_start|>` is
one token. Only control (and unknown) tokens are special, left out of a reply's text: a
user-defined token is text, as in llama.cpp's token_to_piece (Gemma 3's newlines and runs of
spaces are user-defined tokens: as special ones they vanished from every reply).
SentencePiece-style (`llama`) vocabularies are tokenized by spm.py, as llama.cpp's SPM
tokenizer does, from the vocabulary's scores.
"""
from __future__ import annotations

from dataclasses import dataclass

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers.decoders import DecodeStream

from .errors import ModelLoadError
from .gguf_file import MAX_VOCAB
from .gguf_header import StringArray
from .spm import SentencePieceTokenizer, TextStream

_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Qwen3.5: Qwen2's, with combining marks (\p{M}) part of a word
_QWEN35 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
           r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Tekken (Mistral 3) and GPT-4o (o200k: gpt-oss, Phi-4-mini, Llama 4), as llama.cpp writes them:
# tokenizer.json's \p{Lu}-style classes become "a letter that is not a-z" / "not A-Z" (which
# differs from the original on non-ASCII letters: llama.cpp's tokens are the reference here).
_UPPER, _LOWER = r"((?=[\p{L}])([^a-z]))", r"((?=[\p{L}])([^A-Z]))"
_CONTRACTION = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
_TEKKEN = (rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*|\p{{N}}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTION}"
          rf"|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTION}"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# tokenizer.ggml.pre -> regexes applied in order (llama.cpp's llm_tokenizer_bpe table).
PRE_TOKENIZER_REGEXES: dict[str, list[str]] = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "gpt2": [_GPT2],
    "llama3": [_LLAMA3], "llama-bpe": [_LLAMA3], "llama-v3": [_LLAMA3], "dbrx": [_LLAMA3],
    "smaug-bpe": [_LLAMA3], "falcon3": [_LLAMA3], "pixtral": [_LLAMA3],
    "qwen2": [_QWEN2], "deepseek-r1-qwen": [_QWEN2], "megrez": [_QWEN2], "qwen35": [_QWEN35],
    "smollm": [r"\p{N}", _GPT2], "starcoder": [r"\p{N}", _GPT2], "refact": [r"\p{N}", _GPT2],
    "codeshell": [r"\p{N}", _GPT2], "command-r": [r"\p{N}", _GPT2], "exaone": [r"\p{N}", _GPT2],
    "minerva-7b": [r"\p{N}", _GPT2],
    "tekken": [_TEKKEN], "gpt-4o": [_GPT4O], "llama4": [_GPT4O], "olmo": [_GPT2],
}
IGNORE_MERGES_PRE = {"llama3", "llama-bpe", "llama-v3", "dbrx", "smaug-bpe", "falcon3", "pixtral"}

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6
END_OF_TURN_NAMES = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<|eom_id|>",
                     "<|end_of_text|>", "</s>", "<turn|>")     # (<turn|>: Gemma 4's)


# gpt-oss's harmony format (o200k_harmony): a reply is messages on channels, "<|channel|>analysis<|message|>
# ...<|end|><|start|>assistant<|channel|>final<|message|>...<|return|>". As llama.cpp does (llama-vocab.cpp),
# the markers are text of the reply (the channels are told apart from them) and <|end|> ends a message, not
# the reply: when a vocabulary has <|return|>, <|call|> and <|end|>, those markers are not control tokens.
HARMONY_MARKERS = ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", "<|end|>")
HARMONY_STOPS = ("<|return|>", "<|call|>")


def _harmony_rendered(tokens) -> set[int]:
    wanted = set(HARMONY_MARKERS) | set(HARMONY_STOPS)
    if isinstance(tokens, StringArray):     # (found without decoding the whole vocabulary)
        found = tokens.indices_of(wanted)
    else:
        found = {t: i for i, t in enumerate(tokens) if t in wanted}
    if not all(name in found for name in ("<|return|>", "<|call|>", "<|end|>")):
        return set()
    return {found[name] for name in HARMONY_MARKERS if name in found}


@dataclass
class TokenizerInfo:
    tokenizer: Tokenizer | SentencePieceTokenizer
    bos_id: int | None
    eos_id: int | None
    add_bos: bool
    add_eos: bool
    stop_ids: frozenset[int]        # EOS, end-of-turn and other end-of-generation tokens
    special_ids: frozenset[int]     # control and unknown tokens: not text (user-defined ones are)
    warnings: tuple[str, ...]


def decode_stream(tokenizer: Tokenizer | SentencePieceTokenizer) -> DecodeStream | TextStream:
    """A reply's text as its tokens come (step(tokenizer, id) -> new text or None), special
    tokens left out."""
    return DecodeStream(skip_special_tokens=True) if isinstance(tokenizer, Tokenizer) else TextStream()


def _check_texts(values, key: str, path) -> None:
    """A string array as the header parser gives it; a list holds other kinds (nested arrays)."""
    if isinstance(values, list) and not all(isinstance(v, str) for v in values):
        raise ModelLoadError(path, f"{key} holds something other than texts")


def _split(regex: str) -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)


def build_tokenizer(meta: dict, path) -> TokenizerInfo:
    kind = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, (list, StringArray)) or not tokens:
        raise ModelLoadError(path, "the file has no tokenizer vocabulary")
    if len(tokens) > MAX_VOCAB:   # before anything is built for each token (seconds and GBs)
        raise ModelLoadError(path, f"the tokenizer claims {len(tokens):,} tokens (at most {MAX_VOCAB:,})")
    _check_texts(tokens, "tokenizer.ggml.tokens", path)
    types = meta.get("tokenizer.ggml.token_type") or [TOKEN_NORMAL] * len(tokens)
    if not isinstance(types, list) or len(types) != len(tokens):
        raise ModelLoadError(path, "tokenizer token types do not match the vocabulary")
    if not all(type(t) is int for t in types):
        raise ModelLoadError(path, "tokenizer.ggml.token_type holds something other than whole numbers")
    warnings = []
    # An end-of-turn token a file marks user-defined is control all the same (llama.cpp does so too).
    control = [t == TOKEN_CONTROL or (t == TOKEN_USER_DEFINED and tokens[i] in END_OF_TURN_NAMES)
               for i, t in enumerate(types)]
    rendered = _harmony_rendered(tokens)
    for i in rendered:
        control[i] = False
    special = [i for i, t in enumerate(types) if control[i] or t == TOKEN_UNKNOWN]
    special_set = set(special)
    if kind == "llama":
        tok = _build_spm(meta, tokens, types, special_set, path)
    elif kind in ("gpt2", "gemma4"):
        tok = _build_bpe(meta, tokens, path, warnings) if kind == "gpt2" else _build_gemma4(meta, tokens, path)
        # in id order: each added token keeps its id from the vocabulary
        tok.add_tokens([AddedToken(tokens[i], special=i in special_set, normalized=False)
                        for i, t in enumerate(types) if i in special_set or t == TOKEN_USER_DEFINED or i in rendered])
    else:
        raise ModelLoadError(path, f"tokenizer model {kind!r} is not supported (supported: gpt2, llama, gemma4)")
    for texts in (tokens, meta.get("tokenizer.ggml.merges")):
        if isinstance(texts, StringArray):
            texts.release()

    def token_id(key):
        v = meta.get(key)
        return int(v) if isinstance(v, int) and 0 <= v < len(tokens) else None

    bos, eos, eot = token_id("tokenizer.ggml.bos_token_id"), token_id("tokenizer.ggml.eos_token_id"), \
        token_id("tokenizer.ggml.eot_token_id")
    # (llama.cpp adds BOS for gemma4 whatever the file says)
    add_bos = (kind == "gemma4" or bool(meta.get("tokenizer.ggml.add_bos_token", kind == "llama"))) and bos is not None
    add_eos = bool(meta.get("tokenizer.ggml.add_eos_token", False)) and eos is not None
    stops = {i for i in (eos, eot, token_id("tokenizer.ggml.eom_token_id")) if i is not None}
    # llama.cpp also ends generation on well-known end-of-turn control tokens.
    stops |= {i for i in special if tokens[i] in END_OF_TURN_NAMES and control[i]}
    if rendered:     # harmony: a reply ends with <|return|>, or <|call|> for a tool call
        stops |= {i for i in special if tokens[i] in HARMONY_STOPS}
    return TokenizerInfo(tok, bos, eos, add_bos, add_eos, frozenset(stops), frozenset(special), tuple(warnings))


def _build_bpe(meta: dict, tokens: list, path, warnings: list) -> Tokenizer:
    merges_raw = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, (list, StringArray)):
        raise ModelLoadError(path, "a gpt2 tokenizer needs tokenizer.ggml.merges")
    _check_texts(merges_raw, "tokenizer.ggml.merges", path)
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    merges = []
    for m in merges_raw:
        a, sep, b = m.partition(" ")
        if sep:
            merges.append((a, b))
    pre = meta.get("tokenizer.ggml.pre", "default")
    if not isinstance(pre, str):
        warnings.append("tokenizer.ggml.pre is not a name; using GPT-2's, tokens may differ from llama.cpp")
        pre = "gpt2"
    regexes = PRE_TOKENIZER_REGEXES.get(pre)
    if regexes is None:
        warnings.append(f"unknown pre-tokenizer {pre!r}; using GPT-2's, tokens may differ from llama.cpp")
        regexes = PRE_TOKENIZER_REGEXES["gpt2"]
    try:
        model = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False,
                           ignore_merges=pre in IGNORE_MERGES_PRE)
    except Exception as e:
        raise ModelLoadError(path, f"the tokenizer's vocabulary or merges are invalid ({e})") from e
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [_split(r) for r in regexes] + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    return tok


def _merges(meta: dict, path, kind: str) -> list[tuple[str, str]]:
    merges_raw = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges_raw, (list, StringArray)):
        raise ModelLoadError(path, f"a {kind} tokenizer needs tokenizer.ggml.merges")
    _check_texts(merges_raw, "tokenizer.ggml.merges", path)
    merges = []
    for m in merges_raw:
        a, sep, b = m.partition(" ")
        if sep:
            merges.append((a, b))
    return merges


def _build_gemma4(meta: dict, tokens: list, path) -> Tokenizer:
    """Gemma 4's tokenizer, as llama.cpp's LLAMA_VOCAB_PRE_TYPE_GEMMA4: spaces become U+2581 (no
    prefix), the text splits only into runs of newlines and runs of the rest, ranked merges over
    raw characters (no GPT-2 byte alphabet), <0xXX> tokens for what has no token, and a run that
    is a token as a whole stays whole."""
    vocab = {}
    for i, t in enumerate(tokens):
        vocab[t] = i               # (a text listed twice: the later id, as llama.cpp's map keeps)
    try:
        model = models.BPE(vocab=vocab, merges=_merges(meta, path, "gemma4"), fuse_unk=False, byte_fallback=True,
                           ignore_merges=True)
    except Exception as e:
        raise ModelLoadError(path, f"the tokenizer's vocabulary or merges are invalid ({e})") from e
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.pre_tokenizer = _split(r"[^\n]+|[\n]+")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    return tok


def _build_spm(meta: dict, tokens, types: list, special: set, path) -> SentencePieceTokenizer:
    scores = meta.get("tokenizer.ggml.scores")
    if not isinstance(scores, list) or len(scores) != len(tokens):
        raise ModelLoadError(path, "a SentencePiece tokenizer needs tokenizer.ggml.scores")
    if not all(type(x) in (float, int) for x in scores):   # e.g. an array of arrays
        raise ModelLoadError(path, "tokenizer.ggml.scores holds something other than numbers")
    unk = meta.get("tokenizer.ggml.unknown_token_id", 0)
    if type(unk) is not int or not 0 <= unk < len(tokens):
        raise ModelLoadError(path, f"tokenizer.ggml.unknown_token_id {unk!r} is not a token of the vocabulary")
    texts = tokens.tolist() if isinstance(tokens, StringArray) else list(tokens)
    user_defined = {i for i, t in enumerate(types) if t == TOKEN_USER_DEFINED and i not in special}
    return SentencePieceTokenizer(texts, scores, types, special, user_defined, unk,
                                  bool(meta.get("tokenizer.ggml.add_space_prefix", True)))

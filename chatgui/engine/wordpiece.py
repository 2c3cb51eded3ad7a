"""WordPiece tokenization of BERT-style embedding models (tokenizer.ggml.model "bert"), as
llama.cpp's WPM tokenizer does it (llama-vocab.cpp, llm_tokenizer_wpm_session):

1. NFD, lower case; accents (combining marks) and control characters dropped.
2. Split at whitespace; each punctuation character, ASCII symbol and CJK ideograph is a word.
3. Per word: U+2581 then the word, cut greedily into the longest pieces the vocabulary has
   (the converter wrote word-initial pieces with U+2581 and "##" continuations bare); a word
   with any part no piece covers is one [UNK].
4. [CLS] before and [SEP] after (add_bos / add_sep).

The tokenizers package's BertNormalizer differs in small ways (which characters are control,
CJK ranges), so it is written out here: the embeddings must be llama.cpp's.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from .errors import ModelLoadError
from .gguf_header import StringArray

WORD_START = "\u2581"
# llama.cpp's unicode whitespace (the White_Space property), checked before the categories
_WHITESPACE = frozenset([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
                         0x2029, 0x202F, 0x205F, 0x3000])
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK)


def split_words(text: str) -> list[str]:
    """Steps 1 and 2: the normalized words of text."""
    words: list[str] = []
    current: list[str] = []

    def finish():
        if current:
            words.append("".join(current))
            current.clear()

    for ch in unicodedata.normalize("NFD", text):
        cp = ord(ch)
        if cp in _WHITESPACE:
            finish()
            continue
        category = unicodedata.category(ch)
        if cp == 0 or cp == 0xFFFD or category in ("Cc", "Cf", "Co", "Cs") or category == "Mn":
            continue
        low = ch.lower()
        if category[0] == "P" or (cp < 0x7F and category[0] == "S") or _is_cjk(cp):
            finish()
            words.append(low)
        else:
            current.append(low)
    finish()
    return words


class WordPieceTokenizer:
    def __init__(self, tokens, unk_id: int, cls_id: int | None, sep_id: int | None, add_cls: bool, add_sep: bool):
        self.vocab: dict[str, int] = {}
        for i, t in enumerate(tokens):
            self.vocab.setdefault(t, i)
        self.longest = max(len(t) for t in self.vocab)
        self.unk_id, self.cls_id, self.sep_id = unk_id, cls_id, sep_id
        self.add_cls, self.add_sep = add_cls and cls_id is not None, add_sep and sep_id is not None
        self._word = lru_cache(maxsize=1 << 16)(self._word_pieces)

    @classmethod
    def from_metadata(cls, meta: dict, path) -> "WordPieceTokenizer":
        tokens = meta.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, (list, StringArray)) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise ModelLoadError(path, "the file has no WordPiece vocabulary (tokenizer.ggml.tokens)")

        def token_id(key, default=None):
            v = meta.get(key, default)
            return int(v) if isinstance(v, int) and 0 <= v < len(tokens) else None

        unk = token_id("tokenizer.ggml.unknown_token_id", 100)
        if unk is None:
            raise ModelLoadError(path, "a WordPiece tokenizer needs tokenizer.ggml.unknown_token_id")
        return cls(tokens, unk, token_id("tokenizer.ggml.bos_token_id", 101),
                   token_id("tokenizer.ggml.seperator_token_id", 102),
                   bool(meta.get("tokenizer.ggml.add_bos_token", True)),
                   bool(meta.get("tokenizer.ggml.add_sep_token", True)))

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        text = WORD_START + word
        out: list[int] = []
        i, n = 0, len(text)
        while i < n:
            for j in range(min(n, i + self.longest), i, -1):
                found = self.vocab.get(text[i:j])
                if found is not None:
                    out.append(found)
                    i = j
                    break
            else:
                return (self.unk_id,)       # a part no piece covers: the whole word is unknown
        return tuple(out)

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        ids = [self.cls_id] if add_special and self.add_cls else []
        for word in split_words(text):
            ids.extend(self._word(word))
        if add_special and self.add_sep:
            ids.append(self.sep_id)
        return ids

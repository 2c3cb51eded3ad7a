"""SentencePiece-style tokenization (tokenizer.ggml.model "llama": Gemma 3, Llama 2, Mistral
7B, Phi-3), as llama.cpp's SPM tokenizer does it (llama-vocab.cpp, llm_tokenizer_spm_session):

1. Control, unknown and user-defined tokens are cut out of the text whole, the longest first
   (tokenizer_st_partition); user-defined ones stay text when decoded (Gemma 3's newlines and
   runs of spaces), control ones are left out of a reply's text.
2. Each other piece: a U+2581 in front where the file asks (add_space_prefix), spaces as
   U+2581, one symbol per character.
3. Neighbouring symbols whose joined text is a token merge, the pair whose token scores highest
   first (ties: the leftmost), until no pair is a token.
4. A symbol that is no token (a character the vocabulary lacks) becomes its UTF-8 bytes' <0xXX>
   tokens.

Written out rather than built as a `tokenizers` BPE: that needs a merge table derived from the
scores (514,847 pairs for Gemma 3's 262,144 tokens) which took ~280 MB of memory and ~0.6 s of
every load to read back, and the scores alone say the same.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

SPACE = "\u2581"
_BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
_BYTE_VALUE = {t: b for b, t in enumerate(_BYTE_TOKENS)}


@dataclass(frozen=True, slots=True)
class Encoding:
    """What `tokenizers`' Tokenizer.encode gives, as far as the engine reads it."""
    ids: list[int]


class SentencePieceTokenizer:
    """The `tokenizers.Tokenizer` calls the engine makes (encode, encode_batch, decode,
    id_to_token, get_vocab_size), on a SentencePiece vocabulary with scores."""

    decoder = None          # (not byte-level: token_bytes.py reads <0xXX> and U+2581 pieces)

    def __init__(self, tokens: list[str], scores: list[float], types: list[int], special: set[int],
                 user_defined: set[int], unk_id: int, add_space_prefix: bool):
        """types: the file's token types (1 normal ... 6 byte); special and user_defined: the ids
        cut out of text whole (step 1); special ones decode as nothing when special tokens are
        skipped, user-defined ones always as their text."""
        self._tokens = tokens
        self._scores = scores
        self._ids: dict[str, int] = {}
        for i, t in enumerate(tokens):
            self._ids[t] = i            # (a text listed twice: the later id, as llama.cpp's map keeps)
        self._bytes = [self._ids.get(t, unk_id) for t in _BYTE_TOKENS]
        # as llama.cpp's token_to_piece: a byte token is one typed so; an unused (5) or unknown
        # kind of token decodes as nothing
        self._byte_of = {i: _BYTE_VALUE[tokens[i]] for i, t in enumerate(types) if t == 6 and tokens[i] in _BYTE_VALUE}
        self._silent = frozenset(i for i, t in enumerate(types) if t == 5 or not 1 <= t <= 6)
        self._prefix = add_space_prefix
        self._whole_set = frozenset(special | user_defined)
        self._skipped = frozenset(special)
        # Step 1 looks only for the whole tokens whose first 2, then first 8 characters occur in
        # the text (Gemma 3's 6,242 "<unusedN>" fall in ~20 groups of the 8: "<ul>" in a text
        # must not search for them all). Longest first counts UTF-8 bytes, as llama.cpp does.
        self._by_start: dict[str, dict[str, list[int]]] = {}
        for i in sorted(self._whole_set, key=lambda i: (-_size(tokens[i]), i)):     # (equal sizes: in id order)
            if tokens[i]:
                self._by_start.setdefault(tokens[i][:2], {}).setdefault(tokens[i][:8], []).append(i)

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False) -> Encoding:
        """(add_special_tokens is accepted for `tokenizers`' signature: BOS is the caller's.)"""
        out: list[int] = []
        after_token = True
        for part in self._partition(text):
            if isinstance(part, int):
                out.append(part)
                after_token = True
                continue
            if self._prefix and after_token:
                part = " " + part
            self._encode_piece(part.replace(" ", SPACE), out)
            after_token = False
        return Encoding(out)

    def encode_batch(self, texts, add_special_tokens: bool = False) -> list[Encoding]:
        return [self.encode(t) for t in texts]

    def _partition(self, text: str) -> list[str | int]:
        """Step 1: text as pieces of text and ids of whole tokens, each token cut out of every
        piece left by the longer ones before it (llama.cpp's order), leftmost occurrence first."""
        found = [i for key, groups in self._by_start.items() if key in text
                 for key8, ids in groups.items() if key8 in text for i in ids if self._tokens[i] in text]
        if not found:
            return [text] if text else []
        found.sort(key=lambda i: (-_size(self._tokens[i]), i))
        parts: list[str | int] = [text]
        for i in found:
            t = self._tokens[i]
            cut: list[str | int] = []
            for part in parts:
                if isinstance(part, int) or t not in part:
                    cut.append(part)
                    continue
                pieces = part.split(t)
                for j, piece in enumerate(pieces):
                    if j:
                        cut.append(i)
                    if piece:
                        cut.append(piece)
            parts = cut
        return parts

    def _encode_piece(self, text: str, out: list[int]) -> None:
        """Steps 3 and 4 on one piece of text (spaces already U+2581)."""
        n = len(text)
        if not n:
            return
        ids, scores = self._ids, self._scores
        size = [1] * n                      # a symbol's characters (0: merged into its left neighbour)
        prev = list(range(-1, n - 1))
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        # (-score, left, right, joined size): the best pair pops first, ties the leftmost
        heap = []
        for i in range(n - 1):
            tid = ids.get(text[i:i + 2])
            if tid is not None:
                heap.append((-scores[tid], i, i + 1, 2))
        heapq.heapify(heap)
        push, pop = heapq.heappush, heapq.heappop
        while heap:
            _, left, right, joined = pop(heap)
            a, b = size[left], size[right]
            if not a or not b or a + b != joined:
                continue                # (stale: one of them merged since)
            size[left], size[right] = joined, 0
            after = nxt[right]
            nxt[left] = after
            if after >= 0:
                prev[after] = left
            before = prev[left]
            if before >= 0:
                tid = ids.get(text[before:left + joined])
                if tid is not None:
                    push(heap, (-scores[tid], before, left, size[before] + joined))
            if after >= 0:
                tid = ids.get(text[left:after + size[after]])
                if tid is not None:
                    push(heap, (-scores[tid], left, after, joined + size[after]))
        i = 0
        while i >= 0:
            piece = text[i:i + size[i]]
            tid = ids.get(piece)
            if tid is not None:
                out.append(tid)
            else:
                out.extend(self._bytes[b] for b in piece.encode("utf-8"))
            i = nxt[i]

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Text of ids: U+2581 as spaces, <0xXX> tokens as their bytes (what is not UTF-8 in a
        run of them: U+FFFD, so text decoded so far stays as it was: TextStream), the file's
        space prefix taken off."""
        out: list[str] = []
        run = bytearray()
        for tid in ids:
            tid = int(tid)
            byte = self._byte_of.get(tid)
            if byte is not None:
                run.append(byte)
                continue
            if run:
                out.append(run.decode("utf-8", errors="replace"))
                run.clear()
            if skip_special_tokens and tid in self._skipped or not 0 <= tid < len(self._tokens) or tid in self._silent:
                continue
            piece = self._tokens[tid]
            out.append(piece if tid in self._whole_set else piece.replace(SPACE, " "))
        if run:
            out.append(run.decode("utf-8", errors="replace"))
        text = "".join(out)
        return text[1:] if self._prefix and text.startswith(" ") else text

    def id_to_token(self, i: int) -> str | None:
        return self._tokens[i] if 0 <= i < len(self._tokens) else None

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        return len(self._tokens)


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


class TextStream:
    """A reply's text as its tokens come, for a tokenizer written here: `tokenizers`'
    DecodeStream (step_decode_stream) over its decode. step gives the new text, or None while
    the tokens so far end inside a character (<0xXX> pieces of one) or add no text (a skipped
    control token). A few tokens before the new one are decoded with it, so that what depends
    on neighbours (the space prefix taken off the start) comes out as in the whole text."""

    def __init__(self, skip_special_tokens: bool = True):
        self._skip = skip_special_tokens
        self._ids: list[int] = []
        self._prefix = ""
        self._prefix_index = 0

    def step(self, tokenizer: SentencePieceTokenizer, token_id: int) -> str | None:
        self._ids.append(int(token_id))
        text = tokenizer.decode(self._ids, skip_special_tokens=self._skip)
        if len(text) <= len(self._prefix) or text.endswith("\ufffd") or not text.startswith(self._prefix):
            return None
        new = text[len(self._prefix):]
        new_prefix_index = len(self._ids) - self._prefix_index
        self._ids = self._ids[self._prefix_index:]
        self._prefix = tokenizer.decode(self._ids, skip_special_tokens=self._skip)
        self._prefix_index = new_prefix_index
        return new

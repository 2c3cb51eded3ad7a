"""The exact bytes of each token, which a token's decoded text cannot always give (a token may
hold part of a UTF-8 character, which decodes to U+FFFD). For logprobs' "bytes" and for
grammar libraries, which match tokens byte by byte."""
from __future__ import annotations

import re
from functools import lru_cache

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_level_decoding() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, reversed: the printable character standing for each byte."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def vocabulary_bytes(tokenizer, special_ids=()) -> list[bytes]:
    """bytes for every token id of a `tokenizers` Tokenizer built by tokenizer.py: byte-level BPE
    (gpt2 style) or byte-fallback BPE (SentencePiece style). Special tokens give their text."""
    byte_level = type(tokenizer.decoder).__name__ == "ByteLevel"
    table = _byte_level_decoding()
    special = set(special_ids)
    out = []
    for i in range(tokenizer.get_vocab_size(with_added_tokens=True)):
        piece = tokenizer.id_to_token(i) or ""
        if i in special:
            out.append(piece.encode("utf-8"))
        elif byte_level and all(c in table for c in piece):
            out.append(bytes(table[c] for c in piece))
        elif (m := _BYTE_TOKEN.fullmatch(piece)) is not None:
            out.append(bytes([int(m.group(1), 16)]))
        else:
            out.append(piece.replace("\u2581", " ").encode("utf-8"))
    return out


def model_vocabulary_bytes(model) -> list[bytes]:
    """vocabulary_bytes of a ChatModel, computed once per model object."""
    cached = getattr(model, "_vocabulary_bytes", None)
    if cached is None:
        cached = vocabulary_bytes(model.tok.tokenizer, model.tok.special_ids)
        model._vocabulary_bytes = cached
    return cached

"""The per-token records of a reply, packed small: about a fifth of their JSON.

Records are TokenRecords (chatgui.common.records); the app's own all have one shape: both
probabilities and both lists of alternatives, every probability rounded to 6 decimals, a token
id's text the same wherever it appears. Such a list is stored column by column: ids and
probabilities (as millionths) as integer arrays split into byte planes, which zlib squeezes
well, and each alternative's text once per token id. Anything else (a forced token, a record
without the after-sampling values, an unrounded probability) is stored as zlib-compressed JSON
of the records' dicts instead. Both ways give back the records that were packed; both read the
same as before records were typed (the columns decode to the same dicts, `TokenRecord.to_dict`).
Unpacking builds the records directly from the columns: a 400-token reply takes about a
millisecond.
"""
from __future__ import annotations

import base64
import gc
import json
import math
import struct
import zlib
from array import array

from chatgui.common.records import TokenRecord, records_from_dicts, records_to_dicts

_JSON, _COLUMNS = b"J", b"C"
# A chat document (JSON export, format 2) may give a reply's records packed, as base64 text
# under this meta key instead of a "token_data" list of dicts.
PACKED_KEY = "token_data_packed"
_KEYS = ("id", "t", "p", "alts", "sp", "salts")
# The most a blob may unpack to. A reply's records take ~60 bytes a token as columns and ~300 as
# JSON, so this is 100,000+ tokens; a blob from an imported file could otherwise be a zlib bomb
# (389 KB of base64 unpacked to 7.5 GB: a MemoryError, or the system's memory gone).
MAX_UNPACKED_BYTES = 32 << 20


class _Irregular(Exception):
    pass


def pack(tokens: list) -> bytes:
    """The records (TokenRecords; stored dicts are accepted and typed first) as one blob."""
    if any(type(t) is not TokenRecord for t in tokens):
        tokens = records_from_dicts(tokens)
    try:
        return _COLUMNS + zlib.compress(_columns(tokens), 6)
    except _Irregular:
        tokens = records_to_dicts(tokens)
        text = json.dumps(tokens, ensure_ascii=False, separators=(",", ":"))
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = json.dumps(tokens, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return _JSON + zlib.compress(data, 6)


def unpack(blob: bytes) -> list[TokenRecord]:
    """The records; [] for a blob that cannot be read or unpacks too large (the token view then
    shows none)."""
    # Thousands of small tuples at once: the cyclic garbage collector would run several times
    # over the whole heap meanwhile (it doubles the time), for objects that cannot form cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        kind, body = blob[:1], _inflate(blob[1:])
        if kind == _COLUMNS:
            return _from_columns(body)
        return records_from_dicts(json.loads(body)) if kind == _JSON else []
    except (zlib.error, ValueError, TypeError, struct.error, IndexError, KeyError, UnicodeDecodeError,
            RecursionError):
        return []
    finally:
        if collecting:
            gc.enable()


def _inflate(data: bytes) -> bytes:
    """zlib.decompress, but never past MAX_UNPACKED_BYTES (ValueError, read as no records)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_UNPACKED_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"token records unpack to more than {MAX_UNPACKED_BYTES} bytes")
    if not inflater.eof:
        raise zlib.error("incomplete or truncated token records")
    return out


def to_text(blob: bytes) -> str:
    """A packed blob as JSON-friendly text (base64)."""
    return base64.b64encode(blob).decode("ascii")


def from_text(value) -> list[TokenRecord]:
    """The records of `to_text`'s text; [] if it is not such a text."""
    if not isinstance(value, str):
        return []
    try:
        blob = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return []
    return unpack(blob)


def _millionths(p) -> int:
    if type(p) is not float or not math.isfinite(p):
        raise _Irregular
    k = round(p * 1_000_000)
    if not 0 <= k < 2 ** 32 or k / 1_000_000 != p:
        raise _Irregular
    return k


def _planes(values: array) -> bytes:
    """Byte planes: all first bytes, then all second bytes ... (high bytes are mostly equal)."""
    raw = values.tobytes()
    size = values.itemsize
    return b"".join(raw[i::size] for i in range(size))


def _unplane(data: bytes, typecode: str, n: int) -> array:
    size = array(typecode).itemsize
    planes = [data[i * n:(i + 1) * n] for i in range(size)]
    raw = bytearray(n * size)
    for i, plane in enumerate(planes):
        raw[i::size] = plane
    out = array(typecode)
    out.frombytes(bytes(raw))
    return out


_EXPLICIT = 255  # in `refs`: the id is in the explicit list, not one of the token's alternatives


def _columns(tokens: list[TokenRecord]) -> bytes:
    """Columns. A token's own id and its sampled alternatives' ids are mostly among its model
    alternatives: those are written as an index into them (one byte in `refs`)."""
    explicit, probs, counts, alt_ids, refs = array("i"), array("I"), bytearray(), array("i"), bytearray()
    flags = bytearray()
    texts: list[str] = []
    vocab: dict[int, str] = {}

    def alternative(alt) -> int:
        if not isinstance(alt, tuple) or len(alt) != 3 or type(alt[0]) is not int or type(alt[1]) is not str:
            raise _Irregular
        if vocab.setdefault(alt[0], alt[1]) != alt[1]:
            raise _Irregular
        probs.append(_millionths(alt[2]))
        return alt[0]

    def ref(token_id: int, among: list[int]) -> None:
        if token_id in among:
            refs.append(among.index(token_id))
        else:
            refs.append(_EXPLICIT)
            explicit.append(token_id)

    for token_id, text, p, alts, sp, salts, forced in tokens:
        if forced or type(token_id) is not int or type(text) is not str or p is None or sp is None:
            raise _Irregular
        if len(alts) >= _EXPLICIT or len(salts) > 255:
            raise _Irregular
        texts.append(text)
        counts += bytes((len(alts), len(salts)))
        own = [alternative(a) for a in alts]
        alt_ids.extend(own)
        ref(token_id, own)
        sampled = [alternative(salt) for salt in salts]
        for salt_id in sampled:
            ref(salt_id, own)
        # p and sp are usually the token's own entries among its alternatives: a flag says so.
        flag = 0
        for bit, value, among, table in ((1, p, own, alts), (2, sp, sampled, salts)):
            k = _millionths(value)
            if token_id in among and table[among.index(token_id)][2] == value:
                flag |= bit
            else:
                probs.append(k)
        flags.append(flag)
    if any("\0" in t for t in texts) or any("\0" in t for t in vocab.values()):
        raise _Irregular
    try:
        text_blob = "\0".join(texts).encode("utf-8")
        vocab_blob = "\0".join(vocab.values()).encode("utf-8")
    except UnicodeEncodeError:
        raise _Irregular from None
    vocab_ids = array("i", vocab)
    sections = [_planes(explicit), text_blob, bytes(counts), _planes(alt_ids), bytes(refs), _planes(probs),
                _planes(vocab_ids), vocab_blob, bytes(flags)]
    head = struct.pack("<IIIII", len(tokens), len(explicit), len(alt_ids), len(vocab_ids), len(sections))
    return head + b"".join(struct.pack("<I", len(s)) + s for s in sections)


def _from_columns(body: bytes) -> list[TokenRecord]:
    n, n_explicit, n_alts, n_vocab, n_sections = struct.unpack_from("<IIIII", body)
    pos, sections = 20, []
    for _ in range(n_sections):
        (size,) = struct.unpack_from("<I", body, pos)
        sections.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
    explicit_b, text_b, counts, alt_ids_b, refs, probs_b, vocab_ids_b, vocab_b, flags = sections
    explicit = _unplane(explicit_b, "i", n_explicit).tolist()
    alt_ids = _unplane(alt_ids_b, "i", n_alts).tolist()
    probs = [k / 1_000_000 for k in _unplane(probs_b, "I", len(probs_b) // 4)]
    texts = text_b.decode("utf-8").split("\0") if n else []
    vocab_texts = vocab_b.decode("utf-8").split("\0") if n_vocab else []
    vocab_ids = _unplane(vocab_ids_b, "i", n_vocab).tolist()
    if len(vocab_texts) != n_vocab or len(texts) != n or len(counts) != 2 * n or len(flags) != n:
        raise ValueError("damaged token records")
    word = dict(zip(vocab_ids, vocab_texts)).__getitem__
    make = tuple.__new__
    out = []
    ai = pi = ri = ei = 0
    for i in range(n):  # the same order as _columns wrote each stream in
        n_own, n_salts = counts[2 * i], counts[2 * i + 1]
        own = alt_ids[ai:ai + n_own]
        ai += n_own
        alts = tuple(zip(own, map(word, own), probs[pi:pi + n_own]))
        pi += n_own
        salt_probs = probs[pi:pi + n_salts]
        pi += n_salts
        r = refs[ri]
        if r == _EXPLICIT:
            token_id = explicit[ei]
            ei += 1
        else:
            token_id = own[r]
        sampled = []
        for r in refs[ri + 1:ri + 1 + n_salts]:
            if r == _EXPLICIT:
                sampled.append(explicit[ei])
                ei += 1
            else:
                sampled.append(own[r])
        ri += 1 + n_salts
        salts = tuple(zip(sampled, map(word, sampled), salt_probs))
        flag = flags[i]
        if flag & 1:
            p = alts[own.index(token_id)][2]
        else:
            p = probs[pi]
            pi += 1
        if flag & 2:
            sp = salts[sampled.index(token_id)][2]
        else:
            sp = probs[pi]
            pi += 1
        out.append(make(TokenRecord, (token_id, texts[i], p, alts, sp, salts, False)))
    if (ai, pi, ri, ei) != (len(alt_ids), len(probs), len(refs), len(explicit)):
        raise ValueError("damaged token records")
    return out

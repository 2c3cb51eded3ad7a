"""The per-token records of a reply, packed small: about a fifth of their JSON.

The app's records (ui.worker.token_record) all have one shape: {"id", "t", "p", "alts", "sp",
"salts"}, the alternatives [id, text, p], every probability rounded to 6 decimals. Such a list
is stored column by column: ids and probabilities (as millionths) as integer arrays split into
byte planes, which zlib squeezes well, and each alternative's text once per token id. Anything
else (another shape, an unrounded probability, a token id whose text varies) is stored as
zlib-compressed JSON instead. Both ways give back exactly the list that was packed.
"""
from __future__ import annotations

import json
import math
import struct
import zlib
from array import array

_JSON, _COLUMNS = b"J", b"C"
_KEYS = ("id", "t", "p", "alts", "sp", "salts")


class _Irregular(Exception):
    pass


def pack(tokens: list) -> bytes:
    try:
        return _COLUMNS + zlib.compress(_columns(tokens), 6)
    except _Irregular:
        text = json.dumps(tokens, ensure_ascii=False, separators=(",", ":"))
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = json.dumps(tokens, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return _JSON + zlib.compress(data, 6)


def unpack(blob: bytes) -> list:
    """The records; [] for a blob that cannot be read (the token view then shows none)."""
    try:
        kind, body = blob[:1], zlib.decompress(blob[1:])
        value = _from_columns(body) if kind == _COLUMNS else json.loads(body) if kind == _JSON else []
    except (zlib.error, ValueError, struct.error, IndexError, KeyError, UnicodeDecodeError, StopIteration):
        return []
    return value if isinstance(value, list) else []


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


def _columns(tokens: list) -> bytes:
    """Columns. A token's own id and its sampled alternatives' ids are mostly among its model
    alternatives: those are written as an index into them (one byte in `refs`)."""
    explicit, probs, counts, alt_ids, refs = array("i"), array("I"), bytearray(), array("i"), bytearray()
    flags = bytearray()
    texts: list[str] = []
    vocab: dict[int, str] = {}

    def alternative(alt) -> int:
        if type(alt) is not list or len(alt) != 3 or type(alt[0]) is not int or type(alt[1]) is not str:
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

    for rec in tokens:
        if type(rec) is not dict or tuple(rec) != _KEYS or type(rec["id"]) is not int or type(rec["t"]) is not str:
            raise _Irregular
        alts, salts = rec["alts"], rec["salts"]
        if type(alts) is not list or type(salts) is not list or len(alts) >= _EXPLICIT or len(salts) > 255:
            raise _Irregular
        texts.append(rec["t"])
        counts += bytes((len(alts), len(salts)))
        own = [alternative(a) for a in alts]
        alt_ids.extend(own)
        ref(rec["id"], own)
        sampled = [alternative(salt) for salt in salts]
        for salt_id in sampled:
            ref(salt_id, own)
        # p and sp are usually the token's own entries among its alternatives: a flag says so.
        flag = 0
        for bit, key, among, table in ((1, "p", own, alts), (2, "sp", sampled, salts)):
            k = _millionths(rec[key])
            if rec["id"] in among and table[among.index(rec["id"])][2] == rec[key]:
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


def _from_columns(body: bytes) -> list:
    n, n_explicit, n_alts, n_vocab, n_sections = struct.unpack_from("<IIIII", body)
    pos, sections = 20, []
    for _ in range(n_sections):
        (size,) = struct.unpack_from("<I", body, pos)
        sections.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
    explicit_b, text_b, counts, alt_ids_b, refs, probs_b, vocab_ids_b, vocab_b, flags = sections
    explicit = iter(_unplane(explicit_b, "i", n_explicit))
    alt_ids = _unplane(alt_ids_b, "i", n_alts)
    probs = iter([k / 1_000_000 for k in _unplane(probs_b, "I", len(probs_b) // 4)])
    texts = text_b.decode("utf-8").split("\0") if n else []
    vocab_texts = vocab_b.decode("utf-8").split("\0") if n_vocab else []
    vocab = dict(zip(_unplane(vocab_ids_b, "i", n_vocab), vocab_texts))
    out, ai, ri = [], 0, 0
    for i in range(n):  # the same order as _columns wrote each stream in
        n_own, n_salts = counts[2 * i], counts[2 * i + 1]
        own = list(alt_ids[ai:ai + n_own])
        ai += n_own
        if len(own) != n_own:
            raise IndexError("damaged token records")
        alts = [[t, vocab[t], next(probs)] for t in own]
        salt_probs = [next(probs) for _ in range(n_salts)]
        resolved = [next(explicit) if r == _EXPLICIT else own[r] for r in refs[ri:ri + 1 + n_salts]]
        ri += 1 + n_salts
        token_id, sampled = resolved[0], resolved[1:]
        salts = [[t, vocab[t], sp] for t, sp in zip(sampled, salt_probs)]
        flag = flags[i]
        p = alts[own.index(token_id)][2] if flag & 1 else next(probs)
        sp = salts[sampled.index(token_id)][2] if flag & 2 else next(probs)
        out.append({"id": token_id, "t": texts[i], "p": p, "alts": alts, "sp": sp, "salts": salts})
    return out

"""Per-token records packed by columns must come back exactly, whatever their shape."""
from __future__ import annotations

import json
import random

import pytest

from chatgui.store import token_pack


def app_records(n: int, seed: int = 0) -> list[dict]:
    """Records shaped like ui.worker.token_record's (that module needs Qt, the store must not)."""
    rng = random.Random(seed)
    vocab = {i: rng.choice(["the", " a", "你", "🙂", "", " x\n"]) + str(i) for i in range(300)}
    out = []
    for _ in range(n):
        alts = [[i, vocab[i], round(rng.random(), 6)] for i in rng.sample(range(300), 5)]
        salts = [[i, vocab[i], round(rng.random(), 6)] for i in rng.sample(range(300), rng.randint(0, 5))]
        rec = {"id": rng.randrange(300), "t": rng.choice(["lighthouse", "", " 你好", "🙂"]),
               "p": round(rng.random(), 6), "alts": alts, "sp": round(rng.random(), 6), "salts": salts}
        if rng.random() < 0.7:  # as the engine reports: the token among its alternatives, same probability
            pick = rng.choice(alts)
            rec["id"], rec["p"] = pick[0], pick[2]
            if rng.random() < 0.8:
                rec["sp"] = round(rng.random(), 6)
                salts.append([pick[0], pick[1], rec["sp"]])
        out.append(rec)
    return out


def test_app_records_round_trip_in_columns_and_small():
    records = app_records(400)
    records[0]["p"], records[1]["sp"] = 1.0, 0.0
    blob = token_pack.pack(records)
    assert blob[:1] == b"C" and token_pack.unpack(blob) == records
    assert json.dumps(token_pack.unpack(blob)) == json.dumps(records)  # floats stay floats, key order kept
    json_size = len(json.dumps(records, separators=(",", ":")).encode())
    assert len(blob) < json_size / 4


@pytest.mark.parametrize("change", [
    lambda r: r[3].update(forced=True),                      # explain's forced tokens
    lambda r: r[3].pop("salts"),                              # no sampled distribution
    lambda r: r[3].update(p=1),                               # an int, must stay an int
    lambda r: r[3].update(p=0.1234567),                       # not rounded to 6 decimals
    lambda r: r[3].update(p=float("nan")),
    lambda r: r[3]["alts"][0].__setitem__(1, "another text"),  # one id, two texts
    lambda r: r[3].update(t="nul\0inside"),
    lambda r: r[3].update(t="lone \udc80 surrogate"),
    lambda r: r.append("not a dict"),
])
def test_other_shapes_round_trip_as_json(change):
    records = app_records(20, seed=1)
    records[5]["alts"][0] = [records[3]["alts"][0][0], records[3]["alts"][0][1], 0.5]
    change(records)
    blob = token_pack.pack(records)
    assert blob[:1] == b"J"
    back = token_pack.unpack(blob)
    assert json.dumps(back) == json.dumps(records)


def test_empty_and_damaged_blobs():
    assert token_pack.unpack(token_pack.pack([])) == []
    blob = token_pack.pack(app_records(10))
    for bad in (b"", b"C", blob[:-5], b"C" + b"\x00" * 30, b"Xabc"):
        assert token_pack.unpack(bad) == []

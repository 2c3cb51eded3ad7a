"""Per-token records packed by columns must come back exactly, whatever their shape, and blobs
written before records were typed must still read."""
from __future__ import annotations

import base64
import json
import math
import random

import pytest

from chatgui.common.records import TokenRecord, records_from_dicts
from chatgui.store import token_pack


def app_records(n: int, seed: int = 0) -> list[dict]:
    """Records as the app stores them (TokenRecord.to_dict of the engine client's records)."""
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
    dicts = app_records(400)
    dicts[0]["p"], dicts[1]["sp"] = 1.0, 0.0
    records = records_from_dicts(dicts)
    assert [r.to_dict() for r in records] == dicts        # the typed form holds all of the stored one
    blob = token_pack.pack(records)
    back = token_pack.unpack(blob)
    assert blob[:1] == b"C" and back == records
    assert all(type(r) is TokenRecord and type(r.alts) is tuple and type(r.prob) is float for r in back)
    assert json.dumps([r.to_dict() for r in back]) == json.dumps(dicts)  # floats stay floats, key order kept
    assert token_pack.pack(dicts) == blob                 # stored dicts are typed first: the same blob
    assert len(blob) < len(json.dumps(dicts, separators=(",", ":")).encode()) / 4


# Written by the version before typed records (its pack() of these dicts), base64.
OLD_COLUMNS = ("Q3icY2JgYGACYmYo5gRiDiDmBnGgfIWSjFSGD/NnNrGAFDMxMvAAaXZOTgYYYAGT///LgBRP2OChwOmw8ELhi4W2TuzM3IzsDP"
               "xQdRB93HB93DDDFRIZnuxdAHEHAP6BEQs=")
OLD_COLUMNS_DICTS = [
    {"id": 7, "t": " the", "p": 0.5, "alts": [[7, " the", 0.5], [9, " a", 0.25]], "sp": 0.75,
     "salts": [[7, " the", 0.75], [11, "你", 0.125]]},
    {"id": 3, "t": "🙂", "p": 0.015625, "alts": [[9, " a", 0.5]], "sp": 1.0, "salts": []}]
OLD_JSON = ("Snici65WykxRsjLVUSpRslLyOLxSSUepQMnKQA8okphTUqxkFR0NZIIlgIKxOtHmOkpP9i4A8YxMY2NrdSAGmEEMqMDUHqujVAwTKkaIpeUXJacCNZY"
            "UlabWxgIANzgnXw==")


def test_blobs_of_the_previous_version_read_as_typed_records():
    back = token_pack.unpack(base64.b64decode(OLD_COLUMNS))
    assert [r.to_dict() for r in back] == OLD_COLUMNS_DICTS
    assert back[0].alts == ((7, " the", 0.5), (9, " a", 0.25)) and back[0].sampled_prob == 0.75
    old = token_pack.unpack(base64.b64decode(OLD_JSON))
    assert old == [TokenRecord(5, "Hé", 0.5, ((5, "Hé", 0.5), (7, "你", 0.25))),
                   TokenRecord(6, "x", 0.5, (), 0.5, (), forced=True)]
    assert not old[0].has_sampled and old[0].shown_prob == 0.5       # recorded without after-sampling values
    # and what this version writes for app records is what the previous one wrote
    assert token_pack.pack(back) == base64.b64decode(OLD_COLUMNS)


@pytest.mark.parametrize("change", [
    lambda r: r[3].update(forced=True),                      # explain's forced tokens
    lambda r: (r[3].pop("salts"), r[3].pop("sp")),            # no sampled distribution
    lambda r: r[3].update(p=0.1234567),                       # not rounded to 6 decimals
    lambda r: r[3].update(p=float("inf")),
    lambda r: r[3].pop("p"),                                  # no probability recorded
    lambda r: r[3]["alts"][0].__setitem__(1, "another text"),  # one id, two texts
    lambda r: r[3].update(t="nul\0inside"),
    lambda r: r[3].update(t="lone \udc80 surrogate"),
])
def test_other_shapes_round_trip_as_json(change):
    dicts = app_records(20, seed=1)
    dicts[5]["alts"][0] = [dicts[3]["alts"][0][0], dicts[3]["alts"][0][1], 0.5]
    change(dicts)
    records = records_from_dicts(dicts)
    assert [r.to_dict() for r in records] == dicts
    blob = token_pack.pack(records)
    assert blob[:1] == b"J"
    assert token_pack.unpack(blob) == records


def test_what_is_not_a_record_is_left_out():
    dicts = app_records(3)
    records = records_from_dicts([dicts[0], "not a dict", {"id": "seven"}, {"t": "no id"}, dicts[1],
                                  {"id": 4, "t": "x", "p": True, "alts": [[1, "a"], [2, "b", "high"], [3, "c", 0.5]]}])
    assert records[0] == records_from_dicts(dicts[:1])[0] and records[2] == records_from_dicts(dicts[1:2])[0]
    assert records[1] == TokenRecord(-1, "no id", None)     # a token whose id was not kept still shows
    assert records[3] == TokenRecord(4, "x", None, ((3, "c", 0.5),))
    assert len(records) == 4 and records_from_dicts("junk") == []
    nan = records_from_dicts([{**dicts[0], "p": float("nan")}])[0]
    assert math.isnan(nan.prob) and token_pack.pack([nan])[:1] == b"J"


def test_empty_and_damaged_blobs():
    assert token_pack.unpack(token_pack.pack([])) == []
    blob = token_pack.pack(records_from_dicts(app_records(10)))
    for bad in (b"", b"C", blob[:-5], b"C" + b"\x00" * 30, b"Xabc", b"J" + b"x\x9c\x03\x00\x00\x00\x00\x01"):
        assert token_pack.unpack(bad) == []
    assert token_pack.from_text("not base64!") == [] and token_pack.from_text(None) == []
    assert token_pack.from_text(token_pack.to_text(blob)) == token_pack.unpack(blob)


def test_unpacking_leaves_the_garbage_collector_as_it_was():
    import gc
    blob = token_pack.pack(records_from_dicts(app_records(50)))
    assert gc.isenabled()
    assert len(token_pack.unpack(blob)) == 50 and gc.isenabled()
    assert token_pack.unpack(b"C" + b"\x00" * 30) == [] and gc.isenabled()   # also when it fails
    gc.disable()
    try:
        token_pack.unpack(blob)
        assert not gc.isenabled()
    finally:
        gc.enable()

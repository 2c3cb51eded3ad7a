"""engine/constrained.py: the grammar mask on the tiny model (byte-level vocabulary)."""
from __future__ import annotations

import json

import pytest
import torch

from chatgui.engine import SamplingSettings
from chatgui.engine.constrained import ConstraintError, json_constraint

HI = [{"role": "user", "content": "Hello there"}]


def test_the_mask_allows_json_and_nothing_else(tiny_model):
    c = json_constraint(tiny_model)
    allowed = c.allowed()
    assert allowed.shape == (tiny_model.args.vocab_size,)
    brace = tiny_model.tokenize("{", add_bos=False)
    assert allowed[brace[0]] and int(allowed.sum()) < 5           # an object starts with "{"
    logits = c.mask(torch.zeros(tiny_model.args.vocab_size))
    assert torch.isfinite(logits).sum() == allowed.sum()
    for tid in tiny_model.tokenize('{"a":[1,true]}', add_bos=False):   # compact: no free whitespace
        assert c.allowed()[tid], tiny_model.token_text(tid)
        c.advance(tid)
    assert c.failed is None
    stop_allowed = c.allowed()
    assert any(stop_allowed[i] for i in tiny_model.tok.stop_ids)  # complete: the reply may end


def test_constrained_generation_gives_valid_json_on_a_random_model(tiny_model):
    schema = {"type": "object", "properties": {"x": {"type": "integer", "minimum": 1, "maximum": 9}},
              "required": ["x"], "additionalProperties": False}
    gen = tiny_model.generate(HI, SamplingSettings(max_new_tokens=60, seed=3), constraint=json_constraint(tiny_model,
                                                                                                         schema))
    list(gen)
    assert gen.stats.finish_reason == "stop" and 1 <= json.loads(gen.text)["x"] <= 9


@pytest.mark.parametrize("schema", [{"type": "nonsense"}, {"type": 5}, {"required": "x"},
                                    {"$ref": "#/missing"}, {"type": "string", "pattern": "(?<=a)b"}, [1]])
def test_bad_schemas_raise_constraint_error(tiny_model, schema):
    with pytest.raises(ConstraintError):
        json_constraint(tiny_model, schema)

"""engine/constrained.py: the grammar mask on the tiny model (byte-level vocabulary)."""
from __future__ import annotations

import json

import pytest
import torch

from chatgui.engine import SamplingSettings
from chatgui.engine.constrained import ConstraintError, json_constraint
from chatgui.common.prompt import PromptMessage

HI = [PromptMessage.user("Hello there")]


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


# -- schemas llguidance gives up on (issue 29, case 8) ------------------------------------------
BIG_ANY_OF = {"anyOf": [{"type": "object", "properties": {f"k{i}": {"const": i}}, "required": [f"k{i}"],
                         "additionalProperties": False} for i in range(5000)]}
ENDLESS = {"$ref": "#/$defs/a", "$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}},
                                                "required": ["x"], "additionalProperties": False}}}


@pytest.mark.parametrize("schema", [BIG_ANY_OF, ENDLESS], ids=["anyOf-5000", "recursive-required-ref"])
def test_a_schema_the_grammar_engine_gives_up_on_is_refused_before_generating(tiny_model, schema):
    # Before: both compiled; the reply was `{` (the parser failed on the next token and only the
    # end token stayed allowed) with finish_reason "stop", as if it were a whole JSON value.
    with pytest.raises(ConstraintError, match="too complex"):
        json_constraint(tiny_model, schema)


class FailsAfter:
    """A constraint that breaks (as llguidance does past one of its limits) after n tokens."""

    def __init__(self, inner, n: int):
        self.inner, self.n, self.fed = inner, n, 0

    def fresh(self):
        return FailsAfter(self.inner.fresh(), self.n)

    def mask(self, logits):
        return self.inner.mask(logits)

    def advance(self, token_id):
        self.fed += 1
        self.inner.advance(token_id)

    @property
    def failed(self):
        return "Parser Error: too many items" if self.fed >= self.n else None

    @property
    def finished(self):
        return self.inner.finished


def test_a_grammar_failure_mid_reply_ends_it_with_finish_reason_error(tiny_model):
    settings = SamplingSettings(max_new_tokens=40, seed=3)
    gen = tiny_model.generate(HI, settings, constraint=FailsAfter(json_constraint(tiny_model), 3))
    events = list(gen)
    assert gen.stats.finish_reason == "error" and len(events) == 3
    assert "too many items" in gen.stats.extra["error"]
    batch = tiny_model.generate_candidates(HI, settings, 2, constraint=FailsAfter(json_constraint(tiny_model), 2))
    list(batch.events())
    assert [c.stats.finish_reason for c in batch.choices] == ["error", "error"]


def test_a_tiny_temperature_is_greedy_not_an_empty_reply(tiny_model):
    greedy = tiny_model.generate(HI, SamplingSettings(max_new_tokens=8, temperature=0, repeat_penalty=1.0))
    list(greedy)
    assert greedy.text, "the test needs a model whose greedy reply is not empty"
    for t in (1e-300, 1e-40, 1e-8):
        tiny = tiny_model.generate(HI, SamplingSettings(max_new_tokens=8, temperature=t, repeat_penalty=1.0, seed=1))
        list(tiny)
        assert tiny.text == greedy.text, t

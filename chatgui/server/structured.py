"""response_format -> a constraint for the engine (engine/constrained.py), or a 400 naming it."""
from __future__ import annotations

from .protocol import ApiError


def constraint_for(model, response_format: dict):
    """json_object: any JSON object; json_schema: valid against the given schema."""
    from chatgui.engine.constrained import ConstraintError, json_constraint

    if getattr(model, "tok", None) is None:
        raise ApiError(400, "This model cannot give structured output.", param="response_format",
                       code="unsupported_value")
    schema = response_format["json_schema"]["schema"] if response_format["type"] == "json_schema" else None
    try:
        return json_constraint(model, schema)
    except ConstraintError as e:
        raise ApiError(400, f"The JSON schema in 'response_format' cannot be used: {e}", param="response_format",
                       code="invalid_schema") from None

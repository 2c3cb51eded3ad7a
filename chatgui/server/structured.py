"""response_format -> a constraint for the engine (engine/constrained.py), or a 400 naming it."""
from __future__ import annotations

from .protocol import ApiError


def constraint_for(model, response_format: dict):
    """json_object: any JSON object; json_schema: valid against the given schema. model: a
    ServableBackend (chatgui.common.backend)."""
    if not model.capabilities.json_constraints:
        raise ApiError(400, "This model cannot give structured output.", param="response_format",
                       code="unsupported_value")
    schema = response_format["json_schema"]["schema"] if response_format["type"] == "json_schema" else None
    try:
        return model.json_constraint(schema)
    except ValueError as e:       # engine.constrained.ConstraintError
        raise ApiError(400, f"The JSON schema in 'response_format' cannot be used: {e}", param="response_format",
                       code="invalid_schema") from None

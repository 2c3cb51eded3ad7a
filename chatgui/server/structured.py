"""response_format: structured output by constrained decoding."""
from __future__ import annotations

from .protocol import ApiError


def constraint_for(model, response_format: dict):
    raise ApiError(400, "'response_format' json_object / json_schema is not supported by this server yet.",
                   param="response_format", code="unsupported_value")

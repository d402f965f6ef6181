"""JSON encoding of values returned by user code."""

from __future__ import annotations

import json
from typing import Any

from .models import dump_model, is_model


def encode_json(value: Any) -> bytes:
    """Encode ``value`` as UTF-8 JSON; pydantic models, also nested ones, as their JSON dump.

    Raises TypeError when a value is not JSON-serializable.
    """
    return json.dumps(value, default=_encode_other, ensure_ascii=False).encode("utf-8")


def _encode_other(value: Any) -> Any:
    if is_model(value):
        return dump_model(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

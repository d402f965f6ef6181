"""Optional pydantic (v2) support.

The runtime never imports pydantic on its own. A model class can only reach an
annotation or a return value after the user's code imported pydantic, so
looking it up in ``sys.modules`` is enough, and apps without pydantic never
load it.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Optional

from .http_messages import RequestError, argument_error


def loaded_pydantic() -> Optional[ModuleType]:
    """Return the pydantic module when the user's code imported pydantic v2."""
    module = sys.modules.get("pydantic")
    if module is None or not str(getattr(module, "VERSION", "")).startswith("2."):
        return None
    return module


def is_model_class(value: Any) -> bool:
    pydantic = loaded_pydantic()
    if pydantic is None or not isinstance(value, type):
        return False
    try:
        return issubclass(value, pydantic.BaseModel)
    except TypeError:
        # Some generic aliases (e.g. list[int] on older Pythons) pass the isinstance check.
        return False


def is_model(value: Any) -> bool:
    pydantic = loaded_pydantic()
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def validate_model(model: Any, payload: Any, loc: tuple[Any, ...] = ()) -> Any:
    """Return ``payload`` validated as ``model``; raise a 422 RequestError naming the fields.

    ``loc`` prefixes each error location, e.g. with the argument's name.
    """
    pydantic = loaded_pydantic()
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as error:
        detail = [
            argument_error([*loc, *entry["loc"]], entry["msg"], entry["type"])
            for entry in error.errors()
        ]
        raise RequestError(422, {"detail": detail}) from error


def dump_model(value: Any) -> Any:
    return value.model_dump(mode="json")


def model_schemas(
    keys: list[tuple[Any, str]], ref_template: str
) -> tuple[dict[tuple[Any, str], dict[str, Any]], dict[str, Any]]:
    """Return a ``$ref`` for each (model, mode) and the schemas that the refs point to.

    ``mode`` is "validation" for inputs and "serialization" for outputs; pydantic
    names a model's two schemas apart (``Name-Input``, ``Name-Output``) when they differ.
    """
    from pydantic.json_schema import models_json_schema

    refs, top_level = models_json_schema(keys, ref_template=ref_template)
    return dict(refs), dict(top_level.get("$defs", {}))

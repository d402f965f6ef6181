"""A request body for the banner's curl example, made from an endpoint's signature."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

_PLACEHOLDERS: dict[Any, Any] = {str: "text", int: 1, float: 1.0, bool: True, list: [], dict: {}}


def example_body(handler: Callable[..., Any]) -> str:
    """Return a JSON body with a placeholder for each required input of ``handler``.

    A single parameter annotated with a pydantic model stands for the whole
    body, so its required fields are used, each with the first of its
    ``examples`` when it declares some. Otherwise the parameters without
    defaults are. Unknown types get ``null``, which the app may reject: the
    body is an example, not a guaranteed valid request.
    """
    hints = _type_hints(handler)
    parameters = [parameter for name, parameter in inspect.signature(handler).parameters.items()
                  if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]
    if len(parameters) == 1 and hasattr(hints.get(parameters[0].name), "model_fields"):
        fields = hints[parameters[0].name].model_fields
        body = {name: field.examples[0] if field.examples else _placeholder(field.annotation)
                for name, field in fields.items() if field.is_required()}
    else:
        body = {parameter.name: _placeholder(hints.get(parameter.name)) for parameter in parameters
                if parameter.default is inspect.Parameter.empty}
    return json.dumps(body)


def _type_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(handler)
    except Exception:  # noqa: BLE001 - an unresolvable annotation only costs the example its types
        return {}


def _placeholder(annotation: Any) -> Any:
    origin = typing.get_origin(annotation) or annotation
    return _PLACEHOLDERS.get(origin)

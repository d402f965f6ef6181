"""Describe the endpoints of a declaration: path, parameters and pydantic models."""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Optional

from ..sdk import App, Function
from .loader import LoadError
from .models import is_model_class

# Paths that the runtime serves itself; the sidecar also relies on them.
RESERVED_PATHS = ("/health", "/openapi.json", "/docs")
CONTROL_PREFIX = "/_orch/"

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_STREAM_TYPES = (
    collections.abc.Iterator,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncGenerator,
)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One ``POST <path>`` handler with the input and output that its signature declares.

    ``name`` is the method's attribute on the App class, or the function's name.
    ``input_model`` is set when the only parameter is annotated with a pydantic
    model; the whole JSON body is then validated with it. Otherwise the body's
    keys are passed as keyword arguments (``parameters``).
    """

    path: str
    name: str
    parameters: tuple[inspect.Parameter, ...]
    hints: Mapping[str, Any]
    accepts_any_keyword: bool
    input_model: Optional[Any]
    output_model: Optional[Any]
    streams: bool
    doc: str


def describe_app(cls: type[App]) -> tuple[Endpoint, ...]:
    """Describe the ``@endpoint`` methods of an App subclass, sorted by path."""
    owner = f"app {cls.__name__}"
    return tuple(
        _describe(path, name, getattr(cls, name), owner=owner, has_self=_has_self(cls, name))
        for path, name in sorted(cls.endpoints().items())
    )


def describe_function(function: Function) -> tuple[Endpoint, ...]:
    """Describe a served function as the single endpoint ``POST /``."""
    owner = f"function {function.__name__}"
    return (_describe("/", function.__name__, function.func, owner=owner, has_self=False),)


def _has_self(cls: type, name: str) -> bool:
    """Return whether the signature of ``getattr(cls, name)`` starts with ``self``."""
    raw = inspect.getattr_static(cls, name)
    return not isinstance(raw, (staticmethod, classmethod))


def _describe(
    path: str, name: str, func: Callable[..., Any], *, owner: str, has_self: bool
) -> Endpoint:
    _check_path(path, owner)
    parameters = list(inspect.signature(func).parameters.values())
    if has_self:
        parameters = parameters[1:]
    _check_parameters(parameters, owner, name)

    hints = _type_hints(func)
    keyword = tuple(p for p in parameters if p.kind in _KEYWORD_KINDS)
    single_model = (
        len(parameters) == 1 and len(keyword) == 1 and is_model_class(hints.get(keyword[0].name))
    )
    returned = hints.get("return")
    return Endpoint(
        path=path,
        name=name,
        parameters=keyword,
        hints=hints,
        accepts_any_keyword=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
        input_model=hints[keyword[0].name] if single_model else None,
        output_model=returned if is_model_class(returned) else None,
        streams=_streams(func, returned),
        doc=inspect.getdoc(func) or "",
    )


def _check_path(path: str, owner: str) -> None:
    if path in RESERVED_PATHS or path.startswith(CONTROL_PREFIX):
        raise LoadError(
            f"{owner}: endpoint path {path} is reserved by the runtime (reserved: "
            f"{', '.join(RESERVED_PATHS)} and {CONTROL_PREFIX}*); choose another path"
        )


def _check_parameters(parameters: list[inspect.Parameter], owner: str, name: str) -> None:
    for parameter in parameters:
        required = parameter.default is parameter.empty
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY and required:
            raise LoadError(
                f"{owner}: parameter '{parameter.name}' of {name}() is positional-only, "
                "but JSON arguments are passed by keyword; remove the '/' from its signature"
            )


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:
        # Unresolvable annotations (e.g. "int | None" on Python 3.9) only lose
        # the pydantic validation and the schema; the endpoint still works.
        return dict(getattr(func, "__annotations__", {}))


def _streams(func: Callable[..., Any], returned: Any) -> bool:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        return True
    origin = typing.get_origin(returned) or returned
    return origin in _STREAM_TYPES

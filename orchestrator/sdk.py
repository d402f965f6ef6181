"""Declarations: ``App``, ``function`` and ``endpoint``.

Users declare what to serve and the environment it needs; nothing here builds
or runs anything. The same module is imported inside app images, so it uses
the standard library only.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import OptionError, closest_match

SUPPORTED_PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
DEFAULT_PYTHON_VERSION = "3.11"
DEFAULT_MACHINE_TYPE = "S"

ENDPOINT_ATTRIBUTE = "__orchestrator_endpoint__"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Options:
    """The environment and serving options of one declaration."""

    requirements: tuple[str, ...] = ()
    python_version: str = DEFAULT_PYTHON_VERSION
    system_packages: tuple[str, ...] = ()
    machine_type: tuple[str, ...] = (DEFAULT_MACHINE_TYPE,)
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    image: str | None = None
    local_python_modules: tuple[str, ...] = ()
    max_concurrency: int = 1
    max_queue: int = 100
    request_timeout: float = 60.0
    startup_timeout: float = 300.0

    def replace(self, **changes: Any) -> Options:
        return build_options(dataclasses.asdict(self) | changes, source="options")


ENVIRONMENT_OPTIONS = (
    "requirements",
    "python_version",
    "system_packages",
    "machine_type",
    "env",
    "image",
    "local_python_modules",
)
APP_ONLY_OPTIONS = ("max_concurrency", "max_queue", "request_timeout", "startup_timeout")
APP_OPTIONS = ENVIRONMENT_OPTIONS + APP_ONLY_OPTIONS
FUNCTION_OPTIONS = ENVIRONMENT_OPTIONS + ("serve",) + APP_ONLY_OPTIONS


def build_options(values: Mapping[str, Any], *, source: str) -> Options:
    """Validate raw option values and return them as ``Options``.

    ``source`` names where the values came from (a class, a decorator,
    ``pyproject.toml``) so that an error shows the user where to look.
    """
    check_option_names(values, APP_OPTIONS, source=source)
    fields: dict[str, Any] = {}
    for name, value in values.items():
        fields[name] = _VALIDATORS[name](value, f"{source}: option '{name}'")
    return Options(**fields)


def check_option_names(values: Mapping[str, Any], allowed: Sequence[str], *, source: str) -> None:
    for name in values:
        if name in allowed:
            continue
        suggestion = closest_match(name, allowed)
        hint = f"; did you mean '{suggestion}'?" if suggestion else "."
        raise OptionError(
            f"{source}: unknown option '{name}'{hint} Valid options: {', '.join(allowed)}."
        )


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise OptionError(f"{where} must be a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise OptionError(f"{where} must contain non-empty strings, got {item!r}")
    return tuple(item.strip() for item in items)


def _python_version(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise OptionError(f"{where} must be a string such as '3.11', got {value!r}")
    if value not in SUPPORTED_PYTHON_VERSIONS:
        raise OptionError(
            f"{where}: unsupported Python version {value!r}; "
            f"supported: {', '.join(SUPPORTED_PYTHON_VERSIONS)}"
        )
    return value


def _machine_types(value: Any, where: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else _string_list(value, where)
    if not names or not all(name.strip() for name in names):
        raise OptionError(f"{where} must name at least one machine type, got {value!r}")
    return tuple(name.strip() for name in names)


def _env(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise OptionError(f"{where} must be a mapping of names to strings, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise OptionError(f"{where}: invalid variable name {key!r}; use letters, digits and '_', not starting with a digit")
        if not isinstance(item, str):
            raise OptionError(f"{where}: value of {key} must be a string, got {item!r}")
        if any(ord(character) < 32 for character in item):
            raise OptionError(f"{where}: value of {key} contains a control character such as a newline; images cannot carry it")
    return dict(value)


def _image(value: Any, where: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise OptionError(f"{where} must be an image reference such as 'python:3.11-slim'")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{where} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"{where} must be zero or a positive integer, got {value!r}")
    return value


def _positive_seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OptionError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "requirements": _string_list,
    "python_version": _python_version,
    "system_packages": _string_list,
    "machine_type": _machine_types,
    "env": _env,
    "image": _image,
    "local_python_modules": _string_list,
    "max_concurrency": _positive_int,
    "max_queue": _non_negative_int,
    "request_timeout": _positive_seconds,
    "startup_timeout": _positive_seconds,
}


def _reject_misspelled_attributes(cls: type, source: str) -> None:
    """Reject a plain class attribute that is almost an option name, such as ``requirments``.

    Apps may carry attributes of their own, so only near misses of an option
    name are errors; methods and private names are never checked.
    """
    for name, value in vars(cls).items():
        if name.startswith("_") or name in APP_OPTIONS or callable(value) or isinstance(value, (classmethod, staticmethod, property)):
            continue
        near = difflib.get_close_matches(name, APP_OPTIONS, n=1, cutoff=0.85)
        if near:
            raise OptionError(
                f"{source}: class attribute '{name}' is not an option; did you mean '{near[0]}'? "
                f"Rename it, or start its name with '_' if it is the app's own attribute."
            )


def endpoint(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an ``App`` method as the handler of ``POST <path>``."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise OptionError(f"endpoint path must start with '/', got {path!r}")

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        setattr(method, ENDPOINT_ATTRIBUTE, path)
        return method

    return mark


class App:
    """Base class of a served app.

    Options are class attributes or class keyword arguments::

        class Thumbnails(orchestrator.App, machine_type="M"):
            requirements = ["pillow==11.0.0"]

    ``setup()`` runs once in the container before the app reports ready, and
    ``teardown()`` runs once when it stops.
    """

    options: Options = Options()

    def __init_subclass__(cls, **class_options: Any) -> None:
        super().__init_subclass__()
        source = f"app {cls.__name__}"
        check_option_names(class_options, APP_OPTIONS, source=source)
        _reject_misspelled_attributes(cls, source)
        inherited = dataclasses.asdict(cls.options)
        attributes = {name: getattr(cls, name) for name in APP_OPTIONS if name in cls.__dict__}
        cls.options = build_options(inherited | attributes | class_options, source=source)

    def setup(self) -> None:
        """Prepare the app (load models, open clients); runs once before serving."""

    def teardown(self) -> None:
        """Release what ``setup()`` acquired; runs once when the app stops."""

    @classmethod
    def endpoints(cls) -> dict[str, str]:
        """Return the endpoint paths of this app mapped to their method names."""
        routes: dict[str, str] = {}
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            path = getattr(member, ENDPOINT_ATTRIBUTE, None)
            if path is None:
                continue
            if path in routes:
                raise OptionError(
                    f"app {cls.__name__}: path {path} is declared by both "
                    f"{routes[path]}() and {name}()"
                )
            routes[path] = name
        return routes


class Function:
    """A plain function with an environment, made by ``@function``."""

    def __init__(self, func: Callable[..., Any], options: Options, serve: bool) -> None:
        self.func = func
        self.options = options
        self.serve = serve
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<orchestrator.Function {self.func.__module__}.{self.func.__qualname__}>"


def function(
    func: Callable[..., Any] | None = None, *, serve: bool = False, **options: Any
) -> Any:
    """Declare a function with an environment.

    Usable bare (``@function``) or with options (``@function(requirements=[...])``).
    With ``serve=True`` it is served as ``POST /`` taking its arguments as JSON;
    otherwise ``orch run`` calls it once in its image and prints the result.
    """

    def declare(target: Callable[..., Any]) -> Function:
        if not callable(target):
            raise OptionError(f"@function must decorate a function, got {target!r}")
        source = f"function {target.__name__}"
        check_option_names(options, FUNCTION_OPTIONS, source=source)
        return Function(target, build_options(options, source=source), bool(serve))

    if func is not None:
        return declare(func)
    return declare

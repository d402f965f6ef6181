"""Turn a reference into a declaration.

A reference is ``path/to/file.py::name``, ``path/to/file.py`` when the file
declares exactly one app or function, or an app name from
``[tool.orchestrator.apps.NAME]`` in ``pyproject.toml``. The user's file is
imported on the host only to read its declarations.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
import sys
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import ProjectConfig, load_project
from .errors import InvalidReference, OrchestratorError, closest_match
from .sdk import APP_OPTIONS, App, Function, Options, build_options


@dataclasses.dataclass(frozen=True)
class Declaration:
    """An app or function found in the user's file, with its merged options."""

    name: str
    path: Path
    target: type[App] | Function
    options: Options
    app_name: str
    project: ProjectConfig
    app_table: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_app(self) -> bool:
        return isinstance(self.target, type)

    @property
    def serves(self) -> bool:
        """Whether the declaration serves HTTP requests (an app, or ``serve=True``)."""
        return self.is_app or bool(self.target.serve)  # type: ignore[union-attr]

    @property
    def reference(self) -> str:
        return f"{self.path}::{self.name}"


def resolve(reference: str, cwd: Path | None = None) -> Declaration:
    """Find the declaration that ``reference`` names."""
    cwd = (cwd or Path.cwd()).resolve()
    file_part, _, name = reference.partition("::")
    if file_part.endswith(".py") or "::" in reference:
        project = load_project(cwd)
        return _from_file(cwd / file_part, name or None, project, app_name=None, app_table={})
    return _from_project_app(reference, cwd)


def _from_project_app(app_name: str, cwd: Path) -> Declaration:
    project = load_project(cwd)
    apps = project.apps()
    if app_name not in apps:
        raise InvalidReference(_unknown_app_message(app_name, project))
    table = apps[app_name]
    if "ref" not in table:
        raise InvalidReference(
            f"[tool.orchestrator.apps.{app_name}] in {project.path} has no 'ref'; "
            f"add ref = \"path/to/file.py::Name\""
        )
    file_part, _, name = str(table["ref"]).partition("::")
    return _from_file(project.root / file_part, name or None, project, app_name, table)


def _unknown_app_message(app_name: str, project: ProjectConfig) -> str:
    if project.path is None:
        return (
            f"invalid reference '{app_name}': expected path/to/file.py::name, or an app name "
            f"from [tool.orchestrator.apps] in pyproject.toml (none found above this folder)"
        )
    known = ", ".join(project.apps()) or "none"
    return (
        f"invalid reference '{app_name}': not a .py file and not an app in "
        f"[tool.orchestrator.apps] of {project.path} (apps: {known})"
    )


def _from_file(
    path: Path, name: str | None, project: ProjectConfig,
    app_name: str | None, app_table: Mapping[str, Any],
) -> Declaration:
    module = import_file(path)
    declarations = find_declarations(module)
    if name is not None and name not in declarations and hasattr(module, name):
        _reject_non_declaration(path, name, getattr(module, name), declarations)
    name = _choose_name(path, name, declarations)

    target = declarations[name]
    options = _merge_options(target, app_table, path, name)
    return Declaration(
        name=name,
        path=path.resolve(),
        target=target,
        options=options,
        app_name=app_name or default_app_name(name),
        project=project,
        app_table=app_table,
    )


def _reject_non_declaration(path: Path, name: str, value: Any, declarations: dict[str, Any]) -> None:
    declared_in = getattr(getattr(value, "func", value), "__module__", None)
    if isinstance(value, Function) or (inspect.isclass(value) and issubclass(value, App)):
        raise InvalidReference(
            f"{path}::{name} is imported from module '{declared_in}'; reference the file "
            f"that declares it"
        )
    kind = type(value).__name__
    article = "an" if kind[0].lower() in "aeiou" else "a"
    raise InvalidReference(
        f"{path}::{name} is {article} {kind}, not an orchestrator.App subclass or an "
        f"@orchestrator.function; reference one of: {', '.join(declarations) or 'none declared'}"
    )


def _choose_name(path: Path, name: str | None, declarations: dict[str, Any]) -> str:
    if name is None:
        if len(declarations) == 1:
            return next(iter(declarations))
        if not declarations:
            raise InvalidReference(
                f"{path} declares no apps or functions; subclass orchestrator.App or "
                f"decorate a function with @orchestrator.function"
            )
        found = ", ".join(declarations) or "none"
        raise InvalidReference(
            f"{path} declares {len(declarations)} apps or functions ({found}); "
            f"name one as {path}::NAME"
        )
    if name in declarations:
        return name
    raise InvalidReference(_missing_name_message(path, name, declarations))


def _missing_name_message(path: Path, name: str, declarations: dict[str, Any]) -> str:
    suggestion = closest_match(name, declarations)
    hint = f"; did you mean '{suggestion}'?" if suggestion else "."
    found = ", ".join(declarations) or "none"
    return f"{path} has no app or function named '{name}'{hint} Declared: {found}"


def _merge_options(target: Any, app_table: Mapping[str, Any], path: Path, name: str) -> Options:
    overrides = {key: value for key, value in app_table.items() if key in APP_OPTIONS}
    if not overrides:
        return target.options
    source = f"[tool.orchestrator.apps] entry for {path.name}::{name}"
    return build_options(dataclasses.asdict(target.options) | overrides, source=source)


def default_app_name(name: str) -> str:
    """Turn ``ThumbnailApp`` or ``make_thumbnail`` into ``thumbnail-app``-style names."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name)
    return re.sub(r"[^a-z0-9-]+", "-", spaced.lower()).strip("-") or "app"


def find_declarations(module: ModuleType) -> dict[str, Any]:
    """Return the apps and functions defined at the top level of ``module``."""
    found: dict[str, Any] = {}
    for name, value in vars(module).items():
        if isinstance(value, Function):
            if getattr(value.func, "__module__", None) == module.__name__:
                found[name] = value
        elif inspect.isclass(value) and issubclass(value, App) and value is not App:
            if value.__module__ == module.__name__:
                found[name] = value
    return found


def import_file(path: Path) -> ModuleType:
    """Import the user's file by path, mapping each failure to a clear error."""
    if path.suffix != ".py":
        raise InvalidReference(f"invalid reference: {path} is not a Python file (.py)")
    if not path.is_file():
        raise InvalidReference(f"file not found: {path}; check the path in the reference")

    module_name = f"orchestrator_user_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    # Registered before it runs, as a normal import would be: dataclasses and
    # pydantic look their module up in sys.modules while the file executes.
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except SyntaxError as error:
        sys.modules.pop(module_name, None)
        raise InvalidReference(
            f"syntax error in {error.filename}, line {error.lineno}: {error.msg}"
        ) from error
    except ModuleNotFoundError as error:
        raise InvalidReference(_missing_module_message(path, error)) from error
    except OrchestratorError:
        raise
    except Exception as error:
        raise InvalidReference(_import_failure_message(path, error)) from error
    finally:
        sys.path.remove(str(path.parent))
    return module


def _missing_module_message(path: Path, error: ModuleNotFoundError) -> str:
    return (
        f"{path} imports '{error.name}' at module level, but it is not installed on this "
        f"machine. Declarations are read on the host, so import '{error.name}' inside "
        f"setup(), an endpoint or the function body instead; keep it in 'requirements' "
        f"so the image has it."
    )


def _import_failure_message(path: Path, error: Exception) -> str:
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).resolve() == path.resolve()]
    where = f", line {frames[-1].lineno}" if frames else ""
    return f"importing {path}{where} raised {type(error).__name__}: {error}"

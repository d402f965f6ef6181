"""Import the user's file and find the declaration to run in it."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from types import ModuleType
from typing import Any, Union

from ..errors import UsageError, closest_match
from ..sdk import App, Function
from .tracebacks import format_user_traceback

Declaration = Union["type[App]", Function]


class LoadError(UsageError):
    """The app file cannot be imported or does not contain the declaration.

    ``details`` is text to print before the message, such as the traceback of
    an exception that the user's module raised while it was imported.
    """

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def load_declaration(app_file: str, app_name: str) -> Declaration:
    """Import ``app_file`` and return its App subclass or Function named ``app_name``."""
    module = import_app_file(app_file)
    return find_declaration(module, app_file, app_name)


def import_app_file(app_file: str) -> ModuleType:
    """Import the file as a module, with its directory first on ``sys.path``."""
    path = os.path.abspath(app_file)
    if not os.path.isfile(path):
        raise LoadError(
            f"app file {app_file} not found; set ORCH_APP_FILE to the path of the "
            "app's Python file inside the image"
        )
    sys.path.insert(0, os.path.dirname(path))

    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(
            f"app file {app_file} cannot be imported; ORCH_APP_FILE must name a .py file"
        )
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, like any import, so that pydantic, pickle and
    # local modules that import the file by name all find this module object.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise LoadError(_describe_syntax_error(error, app_file)) from error
    except ModuleNotFoundError as error:
        raise LoadError(_describe_missing_module(error, app_file)) from error
    except ImportError as error:
        raise LoadError(_describe_import_error(error, app_file)) from error
    except UsageError:
        raise
    except Exception as error:
        raise LoadError(
            f"importing {app_file} failed at {_raise_site(error, app_file)}: "
            f"{type(error).__name__}: {error}; fix the error shown in the traceback above",
            details=format_user_traceback(error),
        ) from error
    return module


def find_declaration(module: ModuleType, app_file: str, app_name: str) -> Declaration:
    """Return the module's App subclass or Function named ``app_name``."""
    value = module.__dict__.get(app_name, _MISSING)
    if value is _MISSING:
        raise LoadError(_describe_missing_name(module, app_file, app_name))
    if not is_declaration(value):
        raise LoadError(
            f"'{app_name}' in {app_file} is {_kind(value)}, not an App subclass or a "
            "@function; set ORCH_APP_NAME to a declaration, or declare it with "
            "@orchestrator.function or as a subclass of orchestrator.App"
        )
    return value


def is_declaration(value: Any) -> bool:
    if isinstance(value, Function):
        return True
    return isinstance(value, type) and issubclass(value, App) and value is not App


_MISSING = object()


def _module_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    # A file named like an already imported module (json.py, logging.py) must
    # not replace that module for everyone else.
    if stem.isidentifier() and stem not in sys.modules:
        return stem
    return "orchestrator_user_app"


def _describe_missing_name(module: ModuleType, app_file: str, app_name: str) -> str:
    names = sorted(name for name, value in module.__dict__.items() if is_declaration(value))
    message = f"{app_file} has no declaration named '{app_name}'"
    suggestion = closest_match(app_name, names)
    if suggestion:
        message += f"; did you mean '{suggestion}'?"
    if not names:
        return message + "; the file declares no App subclass or @function"
    listed = ", ".join(names)
    return message + f"; declarations in the file: {listed}. Set ORCH_APP_NAME to one of them"


def _describe_syntax_error(error: SyntaxError, app_file: str) -> str:
    filename = error.filename or app_file
    return (
        f"syntax error in {filename} line {error.lineno}: {error.msg}; "
        "fix the file and run it again"
    )


def _describe_missing_module(error: ModuleNotFoundError, app_file: str) -> str:
    module = error.name or str(error)
    package = module.split(".")[0]
    site = _raise_site(error, app_file)
    if package in sys.modules:
        return (
            f"{site} imports '{module}', but the installed package '{package}' has no such "
            "module; check the module name against the version pinned in the declaration's "
            "requirements"
        )
    return (
        f"{site} imports '{module}', which is missing from the image's requirements; add "
        f"the package that provides it to the declaration's requirements, or to "
        "local_python_modules if it is a local module"
    )


def _describe_import_error(error: ImportError, app_file: str) -> str:
    return (
        f"import failed at {_raise_site(error, app_file)}: {error}; check the name "
        "against the version pinned in the declaration's requirements"
    )


def _raise_site(error: BaseException, app_file: str) -> str:
    """Return 'file line N' of the innermost frame outside importlib's machinery."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<") and os.path.abspath(frame.filename) != _THIS_FILE
    ]
    if not frames:
        return app_file
    return f"{frames[-1].filename} line {frames[-1].lineno}"


_THIS_FILE = os.path.abspath(__file__)


def _kind(value: Any) -> str:
    if value is App:
        return "the App base class"
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return f"a value of type {type(value).__name__}"

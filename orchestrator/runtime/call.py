"""Call mode: call a function once, print its result as JSON, exit."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from typing import Any

from ..sdk import Function
from .encoding import encode_json
from .loader import Declaration, LoadError
from .tracebacks import format_user_traceback


def run_call(declaration: Declaration) -> int:
    """Call the function with no arguments and return the process exit code.

    The result goes to stdout as JSON (its repr when it is not JSON-serializable)
    and is the only thing there: the function's own prints go to stderr. When
    the function raises, its traceback, without the runtime's frames, goes to
    stderr and the exit code is 1.
    """
    function = _require_function(declaration)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = _call(function)
    except Exception as error:
        sys.stderr.write(format_user_traceback(error))
        return 1
    print(_format_result(result))
    return 0


def _require_function(declaration: Declaration) -> Function:
    if not isinstance(declaration, Function):
        raise LoadError(
            f"'{declaration.__name__}' is an App, but ORCH_MODE=call runs only a @function; "
            "serve the App with ORCH_MODE=serve"
        )
    return declaration


def _call(function: Function) -> Any:
    result = function.func()
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _format_result(result: Any) -> str:
    try:
        return encode_json(result).decode("utf-8")
    except (TypeError, ValueError):
        return repr(result)

"""The declaration being served: its endpoints, and for an App its one instance."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Optional

from ..sdk import App, Function
from .endpoints import Endpoint, describe_app, describe_function
from .event_loop import EventLoopThread
from .loader import Declaration, LoadError


class Service:
    """Creates the App instance, runs its setup and teardown, and resolves endpoints.

    A served Function has no instance, setup or teardown.
    """

    def __init__(self, declaration: Declaration) -> None:
        self.name = declaration.__name__
        self._declaration = declaration
        self._instance: Optional[App] = None
        if isinstance(declaration, Function):
            _check_served(declaration)
            self.endpoints = describe_function(declaration)
        else:
            self.endpoints = describe_app(declaration)

    def start(self, loop: EventLoopThread) -> None:
        """Construct the App and run its ``setup()``; async hooks run on ``loop``."""
        if isinstance(self._declaration, Function):
            return
        instance = self._declaration()
        _call_hook(instance.setup, loop)
        self._instance = instance

    def stop(self, loop: EventLoopThread) -> None:
        """Run the App's ``teardown()`` if ``start()`` finished."""
        if self._instance is not None:
            _call_hook(self._instance.teardown, loop)

    def target(self, endpoint: Endpoint) -> Callable[..., Any]:
        """Return the callable that serves ``endpoint``; only valid after ``start()``."""
        if isinstance(self._declaration, Function):
            return self._declaration.func
        return getattr(self._instance, endpoint.name)


def _check_served(function: Function) -> None:
    if not function.serve:
        raise LoadError(
            f"function '{function.__name__}' is not served over HTTP; declare it with "
            "@function(serve=True), or run it once with ORCH_MODE=call"
        )


def _call_hook(hook: Callable[[], Any], loop: EventLoopThread) -> None:
    result = hook()
    if inspect.isawaitable(result):
        loop.run(result)

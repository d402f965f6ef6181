"""The package's exception hierarchy.

Every error that a user can fix is an ``OrchestratorError``: the CLI catches it
once and prints its message as one line. This module imports nothing outside
the standard library because the runtime inside app images uses it too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OrchestratorError(Exception):
    """An error whose message names the bad value and the fix."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(OrchestratorError):
    """A wrong command line, reference or option."""

    exit_code = 2


class OptionError(UsageError):
    """An invalid option in a declaration or in the project configuration."""


class InvalidReference(UsageError):
    """A reference like ``app.py::name`` that does not lead to a declaration."""


class LockError(OrchestratorError):
    """Requirements that cannot be resolved into a lock."""


class EngineError(OrchestratorError):
    """The Docker engine is unreachable or rejected a request."""


class BuildError(OrchestratorError):
    """An image build failed; carries the failing step and the log file."""

    def __init__(self, message: str, *, step: str = "", log_path: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.log_path = log_path


class RunError(OrchestratorError):
    """An app failed to start or stopped unexpectedly."""


def closest_match(value: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``value``, or None when nothing is close."""
    matches = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None

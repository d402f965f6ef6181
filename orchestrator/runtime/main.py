"""Read the settings, load the declaration and run the selected mode."""

from __future__ import annotations

import logging
import os
import sys

from ..errors import OrchestratorError
from .call import run_call
from .config import read_config
from .loader import LoadError, load_declaration
from .logs import configure_logging
from .serve import serve


def main() -> int:
    """Run the runtime and return the process exit code.

    Exit codes: 0 after a result or a graceful stop, 1 when the function, setup
    or teardown raised, 2 for a bad setting or an app file that cannot be loaded.
    """
    try:
        config = read_config(os.environ)
        configure_logging(config.log_level)
        declaration = load_declaration(config.app_file, config.app_name)
        if config.mode == "call":
            return run_call(declaration)
        exit_code = serve(config, declaration)
    except OrchestratorError as error:
        _print_error(error)
        return error.exit_code
    _exit_now(exit_code)
    return exit_code


def _print_error(error: OrchestratorError) -> None:
    if isinstance(error, LoadError) and error.details:
        sys.stderr.write(error.details)
    sys.stderr.write(f"error: {error.message}\n")


def _exit_now(exit_code: int) -> None:
    # After teardown nothing of the app may keep the container alive, not even
    # non-daemon threads that user code started; atexit handlers do not run.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)

"""The in-image runtime: ``python -m orchestrator.runtime``.

It imports the user's file inside the app's image and either serves the
declaration over HTTP (``ORCH_MODE=serve``) or calls a function once and prints
its result (``ORCH_MODE=call``). It uses the standard library only, so that it
never constrains the packages of the user's image. It uses pydantic (v2) only
when the user's code has imported it.

Settings come from environment variables read at start (see ``config.py``):
``ORCH_APP_FILE``, ``ORCH_APP_NAME``, ``ORCH_MODE``, ``ORCH_APP_HOST``,
``ORCH_APP_PORT``, ``ORCH_CONTROL_TOKEN``, ``ORCH_DRAIN_SECONDS``,
``ORCH_FAILED_EXIT_SECONDS`` and ``ORCH_LOG_LEVEL``.

Only ``orchestrator/__init__.py``, ``errors.py``, ``sdk.py`` and this package
are copied into app images, so nothing here imports other parts of the package.
"""

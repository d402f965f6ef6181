"""The sidecar: an HTTP/1.1 reverse proxy that runs in front of an app container.

Started as ``python -m orchestrator.sidecar`` (Python 3.11 or later) and
configured only by environment variables. It does not depend on Docker.

Configuration (invalid values stop it at start with exit code 2):

- ``ORCH_SIDECAR_HOST`` (``0.0.0.0``), ``ORCH_SIDECAR_PORT`` (8080; 0 picks a free port).
- ``ORCH_UPSTREAM``: the app, ``http://HOST:PORT``. Required.
- ``ORCH_LIMIT_MAX_REQUESTS``: admit this many requests, then stop (0 = no limit).
- ``ORCH_MAX_CONCURRENCY`` (1) requests at the app at once, and up to
  ``ORCH_MAX_QUEUE`` (100) more waiting in a FIFO queue.
- ``ORCH_REQUEST_TIMEOUT``: seconds (60) for one request at the app.
- ``ORCH_AUTH_MODE``: ``public`` (default), ``private`` (keys of ``ORCH_TEAM``)
  or ``shared`` (keys of any team), checked against ``ORCH_KEYS_FILE``.
- ``ORCH_CONTROL_TOKEN``: the secret of the ``/_orch/*`` control calls.
- ``ORCH_LEASE_SECONDS``: stop when no lease renewal came for this long (0 = no lease).
- ``ORCH_DRAIN_SECONDS`` (30): how long a stop waits for in-flight requests.
- ``ORCH_LOG_LEVEL`` (``INFO``).

Endpoints of the sidecar itself (not passed to the app, not counted by the
limit, no API key needed): ``GET /health``, ``GET /metrics`` and the control
calls under ``/_orch/`` (see ``control``). Every other path goes through the
layers composed in ``server.build_handler`` to the app.

Status codes that the sidecar produces itself, all with a JSON body
``{"error": "..."}`` unless noted:

- 400: the request is not valid HTTP/1.1; the connection is closed.
- 401: missing, malformed or invalid API key, or a key of another team in
  ``private`` mode. Has ``WWW-Authenticate: Key``.
- 403: missing or wrong ``X-Orch-Control-Token`` on a control call.
- 404: an unknown path under ``/_orch/``.
- 405: a wrong method on ``/health``, ``/metrics`` or a control call; has ``Allow``.
- 500: a bug in the sidecar.
- 502: the app is unreachable (``app unreachable``) or sent invalid HTTP.
- 503: ``{"error": "request limit reached", "limit": N}``; ``queue full``
  (with ``Retry-After: 1``); ``shutting down``; and ``/health`` while the app
  is not ready or the sidecar is stopping.
- 504: the app did not finish within ``ORCH_REQUEST_TIMEOUT``.

A failure after the response head was sent (timeout, app connection lost)
cannot change the status any more, so the client connection is closed and
the client sees a truncated body.
"""

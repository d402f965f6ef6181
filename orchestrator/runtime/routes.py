"""Route requests to health, docs, control calls and the app's endpoints."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from typing import Optional

from .endpoints import Endpoint
from .event_loop import EventLoopThread
from .handlers import invoke
from .http_messages import (
    HTML_TYPE,
    Request,
    RequestError,
    Response,
    error_response,
    json_response,
)
from .lifecycle import Lifecycle, State
from .openapi import DOCS_HTML, build_openapi
from .service import Service
from .tracebacks import format_user_traceback

logger = logging.getLogger(__name__)

SHUTDOWN_PATH = "/_orch/shutdown"
CONTROL_TOKEN_HEADER = "X-Orch-Control-Token"

Handler = Callable[[Request], Response]


class Router:
    """Maps (path, method) to a handler; other requests get 404 or 405."""

    def __init__(
        self, service: Service, lifecycle: Lifecycle, loop: EventLoopThread, control_token: str
    ) -> None:
        self._service = service
        self._lifecycle = lifecycle
        self._loop = loop
        self._control_token = control_token
        self._openapi: Optional[bytes] = None
        self._openapi_lock = threading.Lock()
        self._routes: dict[str, dict[str, Handler]] = {
            "/health": {"GET": self._health},
            "/openapi.json": {"GET": self._openapi_document},
            "/docs": {"GET": self._docs},
            SHUTDOWN_PATH: {"POST": self._shutdown},
        }
        for endpoint in service.endpoints:
            self._routes[endpoint.path] = {"POST": self._endpoint_handler(endpoint)}

    def handle(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return error_response(404, f"not found: {request.path}")
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            response = error_response(
                405, f"method {request.method} is not allowed for {request.path}; use {allowed}"
            )
            response.headers["Allow"] = allowed
            return response
        return handler(request)

    def _health(self, request: Request) -> Response:
        state, error = self._lifecycle.status()
        payload = {"status": state.value}
        if error:
            payload["error"] = error
        return json_response(200 if state is State.READY else 503, payload)

    def _openapi_document(self, request: Request) -> Response:
        # Built on first use, after the user's module and its models are loaded.
        with self._openapi_lock:
            if self._openapi is None:
                document = build_openapi(self._service.name, self._service.endpoints)
                self._openapi = json.dumps(document).encode("utf-8")
        return Response(200, self._openapi)

    def _docs(self, request: Request) -> Response:
        page = DOCS_HTML.format(title=self._service.name)
        return Response(200, page.encode("utf-8"), HTML_TYPE)

    def _shutdown(self, request: Request) -> Response:
        if not self._control_token:
            logger.warning("rejected control call %s: ORCH_CONTROL_TOKEN is not set", request.path)
            return error_response(
                403, "control calls are disabled because ORCH_CONTROL_TOKEN is not set"
            )
        presented = request.headers.get(CONTROL_TOKEN_HEADER.lower(), "").encode("utf-8")
        if not hmac.compare_digest(presented, self._control_token.encode("utf-8")):
            logger.warning("rejected control call %s: wrong or missing token", request.path)
            return error_response(403, f"missing or wrong {CONTROL_TOKEN_HEADER} header")

        response = json_response(202, {"status": "stopping"})
        # Stopping starts after the 202 was sent, so the caller receives the response.
        reason = "shutdown requested by control call"
        response.on_close.append(lambda: self._lifecycle.request_stop(reason))
        return response

    def _endpoint_handler(self, endpoint: Endpoint) -> Handler:
        return lambda request: self._call_endpoint(endpoint, request)

    def _call_endpoint(self, endpoint: Endpoint, request: Request) -> Response:
        if not self._lifecycle.begin_request():
            return error_response(503, self._unavailable_reason())
        try:
            response = self._invoke(endpoint, request)
        except BaseException:
            self._lifecycle.end_request()
            raise
        response.on_close.append(self._lifecycle.end_request)
        return response

    def _invoke(self, endpoint: Endpoint, request: Request) -> Response:
        try:
            return invoke(endpoint, self._service.target(endpoint), request.body, self._loop)
        except RequestError as error:
            return json_response(error.status, error.payload)
        except Exception as error:
            logger.error(
                "request %s: %s %s raised %s\n%s",
                request.request_id,
                request.method,
                request.path,
                type(error).__name__,
                format_user_traceback(error).rstrip(),
            )
            return error_response(500, "internal error", request_id=request.request_id)

    def _unavailable_reason(self) -> str:
        state, error = self._lifecycle.status()
        if state is State.STARTING:
            return "app is starting; retry when GET /health returns ready"
        if state is State.FAILED:
            return f"app failed to start: {error}"
        return "app is shutting down"

"""The runner's process: one HTTP/1.1 server for the API and the gateway, plus the monitor.

``serve`` opens the state, adopts the runs that survived a restart, starts
the monitor and serves until SIGTERM or SIGINT. Stopping the runner never
stops runs: their containers keep serving, and the next runner adopts them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from ..errors import OrchestratorError
from ..machines import load_catalogue
from .api import Api, is_api_path, send_json
from .backends.base import Backend
from .config import RunnerConfig
from .gateway import Gateway
from .service import RunnerService
from .store import Store

logger = logging.getLogger(__name__)

# A client connection that sends nothing for this long is closed. This also
# bounds how long an idle keep-alive connection keeps a thread busy.
IDLE_CONNECTION_SECONDS = 120.0
# How long a stop waits for requests in flight (a followed log, a long
# response through the gateway) before the runner exits under them.
REQUEST_DRAIN_SECONDS = 10.0


class RunnerHTTPServer(ThreadingHTTPServer):
    """A thread per connection; threads of open connections do not delay the exit."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._in_flight = 0
        self._idle = threading.Condition()

    def begin_request(self) -> None:
        with self._idle:
            self._in_flight += 1

    def end_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_for_requests(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for requests in flight; return how many remain."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
            return self._in_flight


def make_handler(api: Api, gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    """Return the request handler class: API paths to ``api``, every other path to ``gateway``."""

    class RunnerRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "orchestrator-runner"
        timeout = IDLE_CONNECTION_SECONDS
        server: RunnerHTTPServer

        def dispatch(self) -> None:
            self.server.begin_request()
            try:
                path = urllib.parse.urlsplit(self.path).path
                if is_api_path(path):
                    api.handle(self)
                else:
                    gateway.handle(self)
            except (BrokenPipeError, ConnectionResetError) as error:
                logger.debug("client %s left: %s", self.client_address[0], error)
                self.close_connection = True
            except Exception:
                logger.exception("%s %s failed", self.command, self.path)
                self.close_connection = True
                try:
                    send_json(self, 500, {"error": "internal error in the runner"})
                except OSError:
                    pass
            finally:
                self.server.end_request()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s %s", self.client_address[0], format % args)

    return RunnerRequestHandler


def serve(config: RunnerConfig, backend: Backend, stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT, or until ``stop`` is set; leave the runs running.

    Signal handlers are installed only when called from the main thread, so
    a caller in another thread (a test) stops the runner with ``stop``.
    Raises OrchestratorError when the catalogue, the state or the port is unusable.
    """
    catalogue = load_catalogue(config.machine_catalogue)
    store = Store(config.database_path)
    service = RunnerService(store, backend, catalogue, config)
    stop = stop or threading.Event()
    try:
        service.write_key_file()
        service.reconcile()
        service.start_monitor()
        server = _listen(config, make_handler(Api(service, config), Gateway(service)))
        logger.info(
            "runner listening on http://%s:%d (public URL %s), backend %s, machine catalogue %s "
            "(%s), state %s",
            config.host, server.server_address[1], config.public_url, backend.name,
            config.machine_catalogue, ", ".join(catalogue), config.database_path,
        )
        restore_signals = _stop_on_signals(stop)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="runner-http"
        )
        thread.start()
        try:
            stop.wait()
        finally:
            restore_signals()
            _shut_down(server, thread)
    finally:
        service.stop()
        store.close()
    logger.info("runner stopped; its runs keep running and the next runner adopts them")


def _listen(config: RunnerConfig, handler: type[BaseHTTPRequestHandler]) -> RunnerHTTPServer:
    try:
        return RunnerHTTPServer((config.host, config.port), handler)
    except OSError as error:
        raise OrchestratorError(
            f"cannot listen on {config.host}:{config.port}: {error}; "
            "set ORCH_RUNNER_PORT to a free port"
        ) from error


def _shut_down(server: RunnerHTTPServer, thread: threading.Thread) -> None:
    logger.info("stopping: no longer accepting connections")
    server.shutdown()
    server.server_close()
    thread.join()
    remaining = server.wait_for_requests(REQUEST_DRAIN_SECONDS)
    if remaining:
        logger.warning(
            "stopping with %d requests still in flight after %g s", remaining, REQUEST_DRAIN_SECONDS
        )


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM or SIGINT; return a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(number: int, frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(number).name)
        stop.set()

    previous = {
        number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)
    }

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


def main(
    make_backend: Callable[[RunnerConfig], Backend], environ: Mapping[str, str] | None = None
) -> int:
    """Run the runner with the settings of the environment; return the exit code.

    An invalid setting is logged as one line and returns 2.
    """
    environ = os.environ if environ is None else environ
    logging.basicConfig(
        level=environ.get("ORCH_LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = RunnerConfig.from_env(environ)
        serve(config, make_backend(config))
    except OrchestratorError as error:
        logger.error("%s", error.message)
        return error.exit_code
    return 0

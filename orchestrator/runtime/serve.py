"""Serve mode: listen at once, run setup in the background, stop gracefully."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Optional

from ..errors import RunError
from .config import RuntimeConfig
from .event_loop import EventLoopThread
from .lifecycle import Lifecycle
from .loader import Declaration
from .routes import Router
from .server import RuntimeHTTPServer
from .service import Service
from .tracebacks import format_user_traceback

logger = logging.getLogger(__name__)

# How often the main thread checks for a signal while it waits for a stop.
_SIGNAL_POLL_SECONDS = 0.1


def serve(config: RuntimeConfig, declaration: Declaration) -> int:
    """Serve ``declaration`` until a stop is requested; return the process exit code."""
    service = Service(declaration)
    lifecycle = Lifecycle()
    loop = EventLoopThread()
    loop.start()
    router = Router(service, lifecycle, loop, config.control_token)
    server = _listen(config, router, lifecycle)
    signals = SignalRecorder()
    signals.install()

    threading.Thread(target=server.serve_forever, name="http-server", daemon=True).start()
    logger.info(
        "serving %s on http://%s:%d (endpoints: %s; drain limit %g s)",
        service.name,
        config.host,
        config.port,
        ", ".join(endpoint.path for endpoint in service.endpoints) or "none",
        config.drain_seconds,
    )
    setup = threading.Thread(
        target=run_setup,
        args=(service, lifecycle, loop, config.failed_exit_seconds),
        name="setup",
        daemon=True,
    )
    setup.start()

    _wait_for_stop(lifecycle, signals)
    return _stop(server, service, lifecycle, loop, config.drain_seconds)


def run_setup(
    service: Service, lifecycle: Lifecycle, loop: EventLoopThread, failed_exit_seconds: float
) -> None:
    """Construct the app and run its setup; on failure report it and exit after a grace period."""
    logger.info("running setup")
    started = time.monotonic()
    try:
        service.start(loop)
    except Exception as error:
        traceback_text = format_user_traceback(error).rstrip()
        logger.error("setup failed with %s\n%s", type(error).__name__, traceback_text)
        lifecycle.mark_failed(f"{type(error).__name__}: {error}")
        logger.error("exiting in %.1f s because setup failed", failed_exit_seconds)
        timer = threading.Timer(
            failed_exit_seconds, lifecycle.request_stop, args=("setup failed", 1)
        )
        timer.daemon = True
        timer.start()
        return
    lifecycle.mark_ready()
    logger.info("setup finished in %.2f s; ready", time.monotonic() - started)


class SignalRecorder:
    """Records SIGTERM and SIGINT for the main thread to act on.

    The handler only stores the signal number, because taking a lock in a
    handler deadlocks when the main thread holds that lock as the signal
    arrives. A second signal ends the process at once with exit code 1.
    """

    def __init__(self) -> None:
        self.received: Optional[int] = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._record)
        signal.signal(signal.SIGINT, self._record)

    def _record(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.received is not None:
            os.write(2, b"second stop signal received; exiting now without teardown\n")
            os._exit(1)
        self.received = signum


def _listen(config: RuntimeConfig, router: Router, lifecycle: Lifecycle) -> RuntimeHTTPServer:
    try:
        return RuntimeHTTPServer((config.host, config.port), router, lifecycle)
    except OSError as error:
        raise RunError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror or error}; "
            "set ORCH_APP_HOST and ORCH_APP_PORT to a free local address"
        ) from error


def _wait_for_stop(lifecycle: Lifecycle, signals: SignalRecorder) -> None:
    while not lifecycle.wait_for_stop(_SIGNAL_POLL_SECONDS):
        if signals.received is not None:
            lifecycle.request_stop(f"received {signal.Signals(signals.received).name}")


def _stop(
    server: RuntimeHTTPServer,
    service: Service,
    lifecycle: Lifecycle,
    loop: EventLoopThread,
    drain_seconds: float,
) -> int:
    logger.info("stopping (%s): no longer accepting connections", lifecycle.stop_reason)
    server.shutdown()
    server.server_close()

    _drain(lifecycle, drain_seconds)
    exit_code = _teardown(service, lifecycle, loop)
    loop.stop()
    logger.info("stopped with exit code %d", exit_code)
    return exit_code


def _drain(lifecycle: Lifecycle, drain_seconds: float) -> None:
    in_flight = lifecycle.in_flight
    logger.info("draining %d in-flight requests (at most %g s)", in_flight, drain_seconds)
    remaining = lifecycle.drain(drain_seconds)
    if remaining:
        logger.warning(
            "drain limit of %g s reached with %d requests still in flight",
            drain_seconds,
            remaining,
        )


def _teardown(service: Service, lifecycle: Lifecycle, loop: EventLoopThread) -> int:
    if not lifecycle.setup_finished:
        logger.info("skipping teardown because setup did not finish")
        return lifecycle.exit_code
    logger.info("running teardown")
    try:
        service.stop(loop)
    except Exception as error:
        traceback_text = format_user_traceback(error).rstrip()
        logger.error("teardown failed with %s\n%s", type(error).__name__, traceback_text)
        return 1
    return lifecycle.exit_code

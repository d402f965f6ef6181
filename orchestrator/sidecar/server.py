"""The sidecar server: the handler chain, the listener and the graceful stop."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from typing import Any

from .admission import AdmissionLayer
from .auth import AuthLayer, KeyStore
from .concurrency import ConcurrencyLayer
from .config import SidecarConfig
from .channel import Channel
from .connection import ClientConnection, close_silent_connections
from .control import ControlEndpoints, is_control_path
from .exchange import Exchange, Handler, send_json
from .health import HealthEndpoint
from .lifecycle import REASON_SIGNAL, Lifecycle
from .metrics import Metrics, MetricsLayer
from .proxy import Proxy
from .timeout import TimeoutLayer
from .upstream import UpstreamError, UpstreamPool, fetch

logger = logging.getLogger(__name__)

# Time the app gets to respond to POST /_orch/shutdown, because its runtime
# may run the app's teardown before responding.
APP_STOP_TIMEOUT_SECONDS = 10.0
# Time that connections still writing a response get after the drain, before
# they are closed.
FINAL_WRITE_SECONDS = 5.0
_METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Router:
    """Sends the sidecar's own paths to its endpoints and everything else to the app."""

    def __init__(
        self, proxied: Handler, health: Handler, metrics: Handler, control: Handler
    ) -> None:
        self._proxied = proxied
        self._health = health
        self._metrics = metrics
        self._control = control

    async def __call__(self, exchange: Exchange) -> None:
        path = exchange.path
        if path == b"/health":
            await self._only_get(exchange, self._health)
        elif path == b"/metrics":
            await self._only_get(exchange, self._metrics)
        elif is_control_path(path):
            await self._control(exchange)
        else:
            await self._proxied(exchange)

    @staticmethod
    async def _only_get(exchange: Exchange, endpoint: Handler) -> None:
        if exchange.method != b"GET":
            await send_json(
                exchange, 405, {"error": "method not allowed; use GET"}, [(b"allow", b"GET")]
            )
            return
        await endpoint(exchange)


def build_handler(
    config: SidecarConfig,
    keys: KeyStore | None,
    lifecycle: Lifecycle,
    pool: UpstreamPool,
    metrics: Metrics,
) -> Handler:
    """Compose the layers that proxied requests pass through, and the router in front."""
    host_header = upstream_host_header(config)

    # Built from the app outwards, so a request passes them in reverse order:
    # metrics -> auth -> admission (request limit) -> concurrency -> timeout -> proxy.
    # - Metrics is outermost, so it counts every status, including the 401 and
    #   503 responses of the layers inside it.
    # - Auth comes before admission, so requests without a valid key never
    #   use up the request limit.
    # - Admission comes before the queue, so a request over the limit is
    #   rejected at once instead of after waiting for a slot.
    # - The timeout is inside the concurrency layer, so time spent in the
    #   queue does not count against it; only time at the app does.
    proxy = Proxy(pool, host_header)
    timeout = TimeoutLayer(proxy, config.request_timeout)
    concurrency = ConcurrencyLayer(timeout, config.max_concurrency, config.max_queue)
    admission = AdmissionLayer(concurrency, config.limit_max_requests, lifecycle)
    auth = AuthLayer(admission, config.auth_mode, config.team, keys)
    proxied = MetricsLayer(auth, metrics)

    def report_status() -> dict[str, Any]:
        return {
            "state": lifecycle.state,
            "served": metrics.served,
            "rejected": metrics.rejected,
            "in_flight": concurrency.in_flight,
            "limit": config.limit_max_requests or None,
            "started_at": round(lifecycle.started_at, 3),
        }

    async def serve_metrics(exchange: Exchange) -> None:
        body = metrics.render(concurrency.in_flight, concurrency.queue_depth, admission.remaining)
        exchange.start_response(
            200,
            [
                (b"content-type", _METRICS_CONTENT_TYPE),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        )
        exchange.send_body(body)
        exchange.end_response()
        await exchange.flush()

    return Router(
        proxied=proxied,
        health=HealthEndpoint(pool, lifecycle, host_header),
        metrics=serve_metrics,
        control=ControlEndpoints(config.control_token, lifecycle, report_status),
    )


def upstream_host_header(config: SidecarConfig) -> bytes:
    return config.upstream_url.removeprefix("http://").encode("idna")


async def serve(config: SidecarConfig, keys: KeyStore | None) -> int:
    """Serve until a graceful stop completes; return the process exit code."""
    lifecycle = Lifecycle(config.lease_seconds)
    # One idle connection per concurrency slot, plus one for health checks.
    pool = UpstreamPool(
        config.upstream_host, config.upstream_port, max_idle=config.max_concurrency + 1
    )
    metrics = Metrics()
    handler = build_handler(config, keys, lifecycle, pool, metrics)
    connections: dict[ClientConnection, asyncio.Task[Any]] = {}

    async def serve_connection(connection: ClientConnection) -> None:
        try:
            await connection.serve()
        finally:
            del connections[connection]

    def start_serving(connection: ClientConnection) -> None:
        connections[connection] = loop.create_task(serve_connection(connection))

    def make_protocol() -> Channel:
        return ClientConnection(handler, lifecycle, on_connected=start_serving).channel

    logger.info("starting: %s", config.describe())
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(make_protocol, config.host, config.port, backlog=1024)
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", config.host, config.port, error)
        return 1
    address = server.sockets[0].getsockname()
    logger.info("listening on %s:%d", address[0], address[1])

    _handle_stop_signals(lifecycle)
    lease_watch = asyncio.create_task(lifecycle.watch_lease())
    sweep = asyncio.create_task(close_silent_connections(connections))
    reason = await lifecycle.wait_for_stop_request()
    lease_watch.cancel()

    await lifecycle.drain(config.drain_seconds)
    await _stop_app(pool, config)
    lifecycle.mark_stopped()
    server.close()
    await _close_connections(connections)
    sweep.cancel()
    pool.close()
    logger.info("closed the listener")

    summary = {
        "served": metrics.served,
        "rejected": metrics.rejected,
        "duration_seconds": round(lifecycle.uptime, 3),
        "reason": reason,
    }
    logger.info("summary %s", json.dumps(summary))
    return 0


def _handle_stop_signals(lifecycle: Lifecycle) -> None:
    def on_signal(signal_number: int) -> None:
        if lifecycle.serving:
            logger.info("received %s", signal.Signals(signal_number).name)
            lifecycle.request_stop(REASON_SIGNAL)
        else:
            lifecycle.cut_drain()

    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, on_signal, signal_number)


async def _stop_app(pool: UpstreamPool, config: SidecarConfig) -> None:
    """Ask the app's runtime to run its teardown and exit; a failure is only logged."""
    headers = [(b"host", upstream_host_header(config)), (b"content-length", b"0")]
    if config.control_token:
        headers.append((b"x-orch-control-token", config.control_token.encode("utf-8")))
    try:
        async with asyncio.timeout(APP_STOP_TIMEOUT_SECONDS):
            status, _ = await fetch(pool, b"POST", b"/_orch/shutdown", headers)
    except (UpstreamError, TimeoutError) as error:
        logger.warning(
            "could not ask the app to stop with POST /_orch/shutdown: %s", error or "timed out"
        )
        return
    if status >= 400:
        logger.warning("POST /_orch/shutdown to the app returned %d", status)
    else:
        logger.info("asked the app to stop: POST /_orch/shutdown returned %d", status)


async def _close_connections(connections: dict[ClientConnection, asyncio.Task[Any]]) -> None:
    """Close idle connections now; give the others FINAL_WRITE_SECONDS to finish writing."""
    for connection, task in list(connections.items()):
        if connection.idle:
            task.cancel()
    tasks = list(connections.values())
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=FINAL_WRITE_SECONDS)
    if pending:
        logger.warning("closing %d connections that were still busy", len(pending))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)

"""The sidecar's state (serving, draining, stopped), its lease and its drain.

Anything may ask for a stop: the request limit, the lease watchdog, a
control call or a signal. The first request wins and names the reason in the
summary. Later ones are logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time

logger = logging.getLogger(__name__)

SERVING = "serving"
DRAINING = "draining"
STOPPED = "stopped"

REASON_LIMIT = "limit reached"
REASON_LEASE = "lease expired"
REASON_STOP = "stop requested"
REASON_SIGNAL = "signal"


class Lifecycle:
    """The state of the sidecar and the count of requests that a drain waits for."""

    def __init__(self, lease_seconds: float = 0.0) -> None:
        self.state = SERVING
        self.stop_reason: str | None = None
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self._stop_requested = asyncio.Event()
        self._drain_cut = asyncio.Event()
        self._accepted = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self._lease_seconds = lease_seconds
        self._lease_deadline = time.monotonic() + lease_seconds

    @property
    def serving(self) -> bool:
        return self.state == SERVING

    @property
    def stopped(self) -> bool:
        return self.state == STOPPED

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started_monotonic

    def request_stop(self, reason: str) -> None:
        """Start a graceful stop: no new requests are admitted from now on."""
        if self.state != SERVING:
            logger.info("stop requested (%s) while already %s; ignoring", reason, self.state)
            return
        self.state = DRAINING
        self.stop_reason = reason
        logger.info("stopping (%s): admitting no more requests", reason)
        self._stop_requested.set()

    def cut_drain(self) -> None:
        """Stop waiting for in-flight requests (a second signal)."""
        logger.warning("second stop signal: not waiting for %d in-flight requests", self._accepted)
        self._drain_cut.set()

    def mark_stopped(self) -> None:
        self.state = STOPPED

    async def wait_for_stop_request(self) -> str:
        await self._stop_requested.wait()
        assert self.stop_reason is not None
        return self.stop_reason

    def begin_request(self) -> None:
        """Count a request that the drain must wait for."""
        self._accepted += 1
        self._drained.clear()

    def end_request(self) -> None:
        self._accepted -= 1
        if self._accepted == 0:
            self._drained.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for accepted requests to finish.

        Returns whether all finished. A second stop signal ends the wait early.
        """
        if self._accepted:
            logger.info("draining %d in-flight requests (up to %g s)", self._accepted, timeout)
        drained = asyncio.ensure_future(self._drained.wait())
        cut = asyncio.ensure_future(self._drain_cut.wait())
        try:
            await asyncio.wait((drained, cut), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
            cut.cancel()
        if self._accepted:
            logger.warning(
                "drain ended with %d requests still in flight; they will be cut", self._accepted
            )
            return False
        logger.info("drained: no requests in flight")
        return True

    def renew_lease(self) -> None:
        self._lease_deadline = time.monotonic() + self._lease_seconds

    async def watch_lease(self) -> None:
        """Request a stop once no lease renewal arrived for the lease duration."""
        if self._lease_seconds <= 0:
            return
        while self.serving:
            remaining = self._lease_deadline - time.monotonic()
            if remaining <= 0:
                logger.warning("lease expired: no renewal for %g s", self._lease_seconds)
                self.request_stop(REASON_LEASE)
                return
            await asyncio.sleep(remaining)

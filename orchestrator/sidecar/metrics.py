"""Request metrics, the metrics layer and their Prometheus text format.

The metrics layer is the outermost layer, so it records the status of every
proxied request, including the 401 and 503 responses of the layers inside it.
The sidecar's own endpoints (``/health``, ``/metrics``, ``/_orch/*``) are
not counted.
"""

from __future__ import annotations

import bisect
import time

from .admission import UNCOUNTED_PATHS
from .exchange import Exchange, Handler

# Upper bounds in seconds, from fast API calls to the default 60 s timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters of finished requests: by status, by duration, served and rejected."""

    def __init__(self) -> None:
        self.responses_by_status: dict[int, int] = {}
        # Requests that reached the app and finished, whatever their status,
        # except the API docs, which do not count toward the limit either.
        self.served = 0
        # Requests that the sidecar rejected in place of the app (401, 503).
        self.rejected = 0
        # Count per bucket, not cumulative; the last entry is +Inf.
        self._bucket_counts = [0] * (len(DURATION_BUCKETS) + 1)
        self._duration_sum = 0.0
        self._duration_count = 0

    def observe(self, exchange: Exchange, seconds: float) -> None:
        if exchange.admitted and exchange.path not in UNCOUNTED_PATHS:
            self.served += 1
        elif exchange.rejected:
            self.rejected += 1
        if not exchange.status:
            # The client left before any response; there is no status to count.
            return
        self.responses_by_status[exchange.status] = (
            self.responses_by_status.get(exchange.status, 0) + 1
        )
        self._bucket_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self._duration_sum += seconds
        self._duration_count += 1

    def render(self, in_flight: int, queue_depth: int, limit_remaining: int | None) -> bytes:
        """Return all metrics in the Prometheus text exposition format 0.0.4."""
        lines = [
            "# HELP orch_requests_total Proxied requests by response status.",
            "# TYPE orch_requests_total counter",
        ]
        for status in sorted(self.responses_by_status):
            lines.append(
                f'orch_requests_total{{status="{status}"}} {self.responses_by_status[status]}'
            )

        lines += [
            "# HELP orch_requests_in_flight Requests being served by the app.",
            "# TYPE orch_requests_in_flight gauge",
            f"orch_requests_in_flight {in_flight}",
            "# HELP orch_queue_depth Requests waiting for a concurrency slot.",
            "# TYPE orch_queue_depth gauge",
            f"orch_queue_depth {queue_depth}",
        ]
        lines += self._render_histogram()
        if limit_remaining is not None:
            lines += [
                "# HELP orch_limit_remaining Requests the request limit still admits.",
                "# TYPE orch_limit_remaining gauge",
                f"orch_limit_remaining {limit_remaining}",
            ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _render_histogram(self) -> list[str]:
        name = "orch_request_duration_seconds"
        lines = [
            f"# HELP {name} Time from receiving a proxied request to the end of its response.",
            f"# TYPE {name} histogram",
        ]
        cumulative = 0
        for bound, count in zip(DURATION_BUCKETS, self._bucket_counts):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self._duration_count}')
        lines.append(f"{name}_sum {self._duration_sum:.6f}")
        lines.append(f"{name}_count {self._duration_count}")
        return lines


class MetricsLayer:
    """Records the status and duration of every exchange that passes through it."""

    def __init__(self, inner: Handler, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def __call__(self, exchange: Exchange) -> None:
        start = time.perf_counter()
        try:
            await self._inner(exchange)
        finally:
            self._metrics.observe(exchange, time.perf_counter() - start)

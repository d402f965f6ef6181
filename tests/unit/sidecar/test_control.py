"""Control endpoints, the lease and graceful stops."""

from __future__ import annotations

import http.client
import signal
import time

import pytest

from .support import CONTROL_TOKEN, Upstream, wait_until

FORBIDDEN = {"error": "missing or invalid X-Orch-Control-Token"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/_orch/lease"), ("GET", "/_orch/status"), ("POST", "/_orch/stop")],
)
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_control_without_token_returns_403(
    start_sidecar, upstream: Upstream, method, path, token
) -> None:
    sidecar = start_sidecar()
    headers = {} if token is None else {"X-Orch-Control-Token": token}

    response = sidecar.request(method, path, headers=headers)

    assert response.status == 403
    assert response.json() == FORBIDDEN
    assert sidecar.process.poll() is None


def test_control_unset_token_rejects_all(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_CONTROL_TOKEN="")

    response = sidecar.request("GET", "/_orch/status", headers={"X-Orch-Control-Token": ""})

    assert response.status == 403
    assert response.json() == FORBIDDEN


def test_control_unknown_path_returns_404(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "GET", "/_orch/unknown", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
    )

    assert response.status == 404
    assert response.json() == {"error": "unknown control endpoint /_orch/unknown"}


def test_control_wrong_method_returns_405(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "GET", "/_orch/stop", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
    )

    assert response.status == 405
    assert response.headers["allow"] == "POST"


def test_control_status_reports_counters(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_LIMIT_MAX_REQUESTS="10")
    sidecar.request("GET", "/echo")
    sidecar.request("GET", "/_orch/status")

    response = sidecar.request(
        "GET", "/_orch/status", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
    )

    status = response.json()
    assert response.status == 200
    assert status["state"] == "serving"
    assert status["served"] == 1
    assert status["rejected"] == 0
    assert status["in_flight"] == 0
    assert status["limit"] == 10
    assert abs(status["started_at"] - time.time()) < 60


def test_control_status_limit_null_without_limit(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "GET", "/_orch/status", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
    )

    assert response.json()["limit"] is None


def test_control_stop_exits_gracefully(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "POST", "/_orch/stop", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
    )
    returncode = sidecar.wait_exit()

    assert response.status == 202
    assert response.json() == {"state": "draining"}
    assert returncode == 0
    assert sidecar.summary()["reason"] == "stop requested"
    assert upstream.shutdown_tokens == [CONTROL_TOKEN]


def test_lease_renewed_keeps_sidecar_running(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_LEASE_SECONDS="1.0")

    statuses = []
    for _ in range(6):
        statuses.append(
            sidecar.request(
                "POST", "/_orch/lease", headers={"X-Orch-Control-Token": CONTROL_TOKEN}
            ).status
        )
        time.sleep(0.2)
    running_while_renewed = sidecar.process.poll() is None

    assert statuses == [204] * 6
    assert running_while_renewed


def test_lease_expiry_stops_sidecar(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_LEASE_SECONDS="0.5")

    returncode = sidecar.wait_exit()

    assert returncode == 0
    assert sidecar.summary()["reason"] == "lease expired"
    assert upstream.shutdown_tokens == [CONTROL_TOKEN]
    assert any("lease expired: no renewal for 0.5 s" in line for line in sidecar.lines)


def test_sigterm_drains_in_flight_request(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request("GET", "/stream")
        streaming = connection.getresponse()
        first_chunk = streaming.read1(100)

        sidecar.process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: any("stopping (signal)" in line for line in sidecar.lines))
        during_drain = sidecar.request("GET", "/echo")

        upstream.stream_gate.set()
        rest = streaming.read()
    finally:
        connection.close()
    returncode = sidecar.wait_exit()

    assert first_chunk + rest == b"firstsecond"
    assert during_drain.status == 503
    assert during_drain.json() == {"error": "shutting down"}
    assert during_drain.headers["connection"] == "close"
    assert returncode == 0
    summary = sidecar.summary()
    assert summary["reason"] == "signal"
    assert summary["served"] == 1
    assert summary["rejected"] == 1
    assert upstream.shutdown_tokens == [CONTROL_TOKEN]


def test_stop_unreachable_app_exits_0(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    upstream.stop()

    sidecar.request("POST", "/_orch/stop", headers={"X-Orch-Control-Token": CONTROL_TOKEN})
    returncode = sidecar.wait_exit()

    assert returncode == 0
    assert any(
        "could not ask the app to stop with POST /_orch/shutdown" in line for line in sidecar.lines
    )
    assert sidecar.summary()["reason"] == "stop requested"

"""GET /health: the sidecar's state and the app's readiness."""

from __future__ import annotations

import http.client

from .support import CONTROL_TOKEN, Upstream


def test_health_reports_ready_app(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request("GET", "/health")

    assert response.status == 200
    assert response.json() == {"sidecar": "ok", "app": {"status": "ready"}}
    assert upstream.paths() == ["/health"]


def test_health_during_drain_returns_503(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request("GET", "/stream")
        streaming = connection.getresponse()
        streaming.read1(100)
        sidecar.request("POST", "/_orch/stop", headers={"X-Orch-Control-Token": CONTROL_TOKEN})

        health = sidecar.request("GET", "/health")

        upstream.stream_gate.set()
        streaming.read()
    finally:
        connection.close()

    assert health.status == 503
    assert health.json() == {"sidecar": "draining", "app": {"status": "ready"}}
    assert sidecar.wait_exit() == 0


def test_health_reports_unready_app(start_sidecar, upstream: Upstream) -> None:
    upstream.health_status = 503
    sidecar = start_sidecar()

    response = sidecar.request("GET", "/health")

    assert response.status == 503
    assert response.json() == {"sidecar": "ok", "app": {"status": "starting"}}


def test_health_reports_unreachable_app(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    upstream.stop()

    response = sidecar.request("GET", "/health")

    assert response.status == 503
    assert response.json() == {"sidecar": "ok", "app": "unreachable"}


def test_health_rejects_post(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request("POST", "/health")

    assert response.status == 405
    assert response.headers["allow"] == "GET"
    assert upstream.paths() == []

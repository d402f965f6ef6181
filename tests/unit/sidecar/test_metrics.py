"""The /metrics endpoint in the Prometheus text format."""

from __future__ import annotations

from pathlib import Path

from orchestrator.keys import create_key, save_key_file

from .support import Upstream


def test_metrics_count_statuses_and_durations(
    start_sidecar, upstream: Upstream, tmp_path: Path
) -> None:
    key = create_key("alpha")
    keys_file = tmp_path / "keys.json"
    save_key_file(keys_file, [key.record])
    sidecar = start_sidecar(
        ORCH_AUTH_MODE="private",
        ORCH_TEAM="alpha",
        ORCH_KEYS_FILE=str(keys_file),
        ORCH_LIMIT_MAX_REQUESTS="10",
    )
    authorized = {"Authorization": f"Key {key.key}"}
    sidecar.request("GET", "/echo", headers=authorized)
    sidecar.request("GET", "/echo", headers=authorized)
    sidecar.request("GET", "/echo")
    sidecar.request("GET", "/health")

    response = sidecar.request("GET", "/metrics")

    text = response.body.decode()
    lines = text.splitlines()
    assert response.status == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE orch_requests_total counter" in lines
    assert 'orch_requests_total{status="200"} 2' in lines
    assert 'orch_requests_total{status="401"} 1' in lines
    assert "# TYPE orch_requests_in_flight gauge" in lines
    assert "orch_requests_in_flight 0" in lines
    assert "# TYPE orch_queue_depth gauge" in lines
    assert "orch_queue_depth 0" in lines
    assert "# TYPE orch_request_duration_seconds histogram" in lines
    assert 'orch_request_duration_seconds_bucket{le="+Inf"} 3' in lines
    assert 'orch_request_duration_seconds_bucket{le="60"} 3' in lines
    assert "orch_request_duration_seconds_count 3" in lines
    assert any(line.startswith("orch_request_duration_seconds_sum ") for line in lines)
    assert "# TYPE orch_limit_remaining gauge" in lines
    assert "orch_limit_remaining 8" in lines


def test_metrics_without_limit_omit_remaining(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    text = sidecar.request("GET", "/metrics").body.decode()

    assert "orch_limit_remaining" not in text
    assert "orch_request_duration_seconds_count 0" in text.splitlines()


def test_metrics_rejects_post(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request("POST", "/metrics")

    assert response.status == 405
    assert response.json() == {"error": "method not allowed; use GET"}
    assert upstream.paths() == []

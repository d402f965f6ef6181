"""The request limit: exactly N requests reach the app, then a graceful stop."""

from __future__ import annotations

import http.client
import json
import threading

from .support import CONTROL_TOKEN, Upstream


def test_limit_admits_exactly_n_of_20_concurrent(start_sidecar, upstream: Upstream) -> None:
    limit = 5
    sidecar = start_sidecar(ORCH_LIMIT_MAX_REQUESTS=str(limit))
    barrier = threading.Barrier(20)
    results: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=30)
        try:
            connection.connect()
            barrier.wait(timeout=10)
            connection.request("GET", "/slow?seconds=0.2")
            response = connection.getresponse()
            result = (response.status, response.read())
            with lock:
                results.append(result)
        except Exception as error:  # any connection error fails the test below
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    returncode = sidecar.wait_exit()

    served = [body for status, body in results if status == 200]
    rejected = [body for status, body in results if status == 503]
    assert errors == []
    assert len(results) == 20
    assert len(served) == limit
    assert len(rejected) == 20 - limit
    assert all(
        json.loads(body) == {"error": "request limit reached", "limit": limit} for body in rejected
    )
    assert upstream.paths().count("/slow?seconds=0.2") == limit
    assert upstream.shutdown_tokens == [CONTROL_TOKEN]
    assert returncode == 0
    summary = sidecar.summary()
    assert summary["served"] == limit
    assert summary["rejected"] == 20 - limit
    assert summary["reason"] == "limit reached"
    assert summary["duration_seconds"] > 0


def test_limit_ignores_health_metrics_and_docs(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_LIMIT_MAX_REQUESTS="2")

    uncounted = [
        sidecar.request("GET", path).status
        for path in ("/health", "/metrics", "/docs", "/openapi.json")
    ] * 3
    metrics_text = sidecar.request("GET", "/metrics").body.decode()
    counted = [sidecar.request("GET", "/echo").status for _ in range(2)]
    returncode = sidecar.wait_exit()

    assert uncounted == [200] * 12
    assert "orch_limit_remaining 2\n" in metrics_text
    assert counted == [200, 200]
    assert returncode == 0
    assert sidecar.summary()["reason"] == "limit reached"
    assert sidecar.summary()["served"] == 2
    assert upstream.paths().count("/echo") == 2


def test_limit_rejects_after_n_with_json(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_LIMIT_MAX_REQUESTS="1", ORCH_DRAIN_SECONDS="10")
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request("GET", "/stream")
        streaming = connection.getresponse()
        first_chunk = streaming.read1(100)

        rejected = sidecar.request("GET", "/echo")

        upstream.stream_gate.set()
        rest = streaming.read()
    finally:
        connection.close()
    returncode = sidecar.wait_exit()

    assert first_chunk == b"first"
    assert rest == b"second"
    assert rejected.status == 503
    assert rejected.json() == {"error": "request limit reached", "limit": 1}
    assert returncode == 0
    assert sidecar.summary() | {"duration_seconds": 0} == {
        "served": 1,
        "rejected": 1,
        "duration_seconds": 0,
        "reason": "limit reached",
    }


def test_limit_ignores_queue_full_rejections(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(
        ORCH_LIMIT_MAX_REQUESTS="2", ORCH_MAX_CONCURRENCY="1", ORCH_MAX_QUEUE="0"
    )
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = sidecar.request("GET", "/slow?seconds=1.0").status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    remaining = sidecar.request("GET", "/metrics").body.decode()
    last = sidecar.request("GET", "/echo")

    assert sorted(statuses) == [200, 503, 503]
    assert "orch_limit_remaining 1\n" in remaining
    assert last.status == 200
    assert sidecar.wait_exit() == 0
    assert sidecar.summary()["served"] == 2
    assert sidecar.summary()["rejected"] == 2

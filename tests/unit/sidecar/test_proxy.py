"""Proxying: bodies, headers, request ids, streaming, timeouts, the queue and errors."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

from .support import Response, Sidecar, Upstream, wait_until


def test_proxy_forwards_body_and_headers(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "POST",
        "/echo?x=1",
        headers={"X-Custom": "value", "Content-Type": "text/plain"},
        body=b"hello app",
    )

    assert response.status == 200
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo?x=1"
    assert echoed["body"] == "hello app"
    assert echoed["headers"]["x-custom"] == "value"
    assert echoed["headers"]["content-type"] == "text/plain"
    assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert response.headers["x-app"] == "echo"
    assert response.headers["content-type"] == "application/json"


def test_proxy_streams_chunked_request_body(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request(
            "PUT", "/upload", body=iter([b"part one, ", b"part two"]), encode_chunked=True
        )
        response = connection.getresponse()
        echoed = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 200
    assert echoed["body"] == "part one, part two"
    assert echoed["headers"]["transfer-encoding"] == "chunked"


def test_proxy_drops_hop_by_hop_and_control_headers(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request(
        "GET",
        "/echo",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "X-Orch-Control-Token": "forged",
        },
    )

    headers = response.json()["headers"]
    assert response.status == 200
    assert "x-secret-hop" not in headers
    assert "x-orch-control-token" not in headers
    assert "connection" not in headers


def test_request_id_added_when_missing(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request("GET", "/echo")

    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert int(request_id, 16) >= 0
    assert response.json()["headers"]["x-request-id"] == request_id


def test_request_id_kept_when_sent(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    response = sidecar.request("GET", "/echo", headers={"X-Request-ID": "client-id-1"})

    assert response.headers["x-request-id"] == "client-id-1"
    assert response.json()["headers"]["x-request-id"] == "client-id-1"


def test_keep_alive_connection_serves_many_requests(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        statuses = []
        for index in range(5):
            connection.request("POST", f"/echo/{index}", body=b"x" * index)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()

    assert statuses == [200] * 5
    assert upstream.paths() == [f"/echo/{index}" for index in range(5)]


def test_upstream_connection_reused(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    statuses = [sidecar.request("GET", "/echo").status for _ in range(5)]

    assert statuses == [200] * 5
    assert len(set(upstream.client_ports())) == 1


def test_upstream_stale_connection_replaced(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    first = sidecar.request("GET", "/then-close")
    assert wait_until(lambda: upstream.closed_connections == 1, timeout=5)
    second = sidecar.request("GET", "/echo")

    assert first.status == 200
    assert second.status == 200
    assert len(set(upstream.client_ports())) == 2


def test_stream_relays_chunks_early(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    try:
        connection.request("GET", "/stream")
        response = connection.getresponse()
        first = response.read1(100)
        finished_before_first_chunk = upstream.stream_finished.is_set()
        upstream.stream_gate.set()
        rest = response.read()
    finally:
        connection.close()

    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert first == b"first"
    assert finished_before_first_chunk is False
    assert rest == b"second"


def test_timeout_returns_504(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_REQUEST_TIMEOUT="0.3")

    response = sidecar.request("GET", "/slow?seconds=2")

    assert response.status == 504
    assert response.json() == {"error": "request timed out after 0.3 s"}
    assert wait_until(lambda: upstream.closed_connections >= 1, timeout=5)
    assert sidecar.request("GET", "/echo").status == 200


def test_queue_full_returns_503(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar(ORCH_MAX_CONCURRENCY="1", ORCH_MAX_QUEUE="1")
    responses: list[Response] = []
    lock = threading.Lock()

    def call() -> None:
        response = sidecar.request("GET", "/slow?seconds=1.0")
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)

    statuses = sorted(response.status for response in responses)
    rejected = [response for response in responses if response.status == 503]
    assert statuses == [200, 200, 503]
    assert rejected[0].json() == {"error": "queue full"}
    assert rejected[0].headers["retry-after"] == "1"
    assert upstream.paths().count("/slow?seconds=1.0") == 2


def test_unreachable_upstream_returns_502(start_sidecar, upstream: Upstream) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    sidecar = start_sidecar(ORCH_UPSTREAM=f"http://127.0.0.1:{port}")

    response = sidecar.request("GET", "/echo")

    assert response.status == 502
    assert response.json() == {"error": "app unreachable"}


def test_control_paths_never_reach_app(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()
    paths = ["/_orch/shutdown", "/%5Forch/shutdown", "/x/../_orch/shutdown", "//_orch/shutdown"]

    statuses = [
        sidecar.request("POST", path, headers={"X-Orch-Control-Token": "t"}).status
        for path in paths
    ]

    assert statuses == [404, 404, 404, 404]
    assert upstream.paths() == []
    assert upstream.shutdown_tokens == []


def test_invalid_http_returns_400(start_sidecar, upstream: Upstream) -> None:
    sidecar = start_sidecar()

    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as client:
        client.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = client.recv(4096)

    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reply.endswith(b'{"error":"invalid HTTP request"}')


def test_sidecar_memory_after_burst(start_sidecar, upstream: Upstream) -> None:
    sidecar: Sidecar = start_sidecar(ORCH_MAX_CONCURRENCY="4")
    errors: list[BaseException] = []

    def burst() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
        try:
            for _ in range(50):
                connection.request("POST", "/echo", body=b"x" * 4096)
                connection.getresponse().read()
        except Exception as error:  # reported below with the RSS
            errors.append(error)
        finally:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    status = open(f"/proc/{sidecar.process.pid}/status").read()
    rss_kib = int(
        next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
    )
    print(
        f"\nsidecar VmRSS after 400 requests from 8 clients: "
        f"{rss_kib / 1024:.1f} MiB ({elapsed:.2f} s)"
    )
    assert errors == []
    # The goal is 30 MiB; this bound only catches a gross leak or regression.
    assert rss_kib < 60 * 1024

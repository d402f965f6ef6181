"""The logs endpoint, and a streamed endpoint of the real runtime through the gateway."""

from __future__ import annotations

import http.client

from .support import ADMIN, RunnerThread, wait_for

READ_LIMIT = 1000


def test_logs_return_app_output(runner: RunnerThread) -> None:
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")
    assert runner.call("POST", "/acme/echo/echo", {"text": "hi"}, headers={}).status == 200

    response = wait_for(
        lambda: runner.call("GET", f"/v1/runs/{run_id}/logs"),
        lambda response: b"echo: called with hi" in response.body,
        "the app's output never reached the logs",
    )

    assert response.status == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert b"echo: setup finished" in response.body


def test_logs_follow_until_app_stops(runner: RunnerThread) -> None:
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")
    connection = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=20)
    try:
        connection.request("GET", f"/v1/runs/{run_id}/logs?follow=1", headers=ADMIN)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        received = b""
        for _ in range(READ_LIMIT):
            received += response.read1(65536)
            if b"echo: setup finished" in received:
                break

        assert runner.call("DELETE", f"/v1/runs/{run_id}").status == 202
        received += response.read()
    finally:
        connection.close()

    assert b"echo: setup finished" in received
    assert b"stopped with exit code 0" in received
    runner.wait_for_state(run_id, "completed")


def test_logs_of_pending_run_conflict(runner: RunnerThread) -> None:
    run_id = runner.create_run(machine_type="GPU-H100")["id"]

    response = runner.call("GET", f"/v1/runs/{run_id}/logs")

    assert response.status == 409
    assert response.json() == {"error": f"run {run_id} is pending and has no containers yet"}


def test_gateway_streams_runtime_output(runner: RunnerThread) -> None:
    run_id = runner.create_run(max_concurrency=2)["id"]
    runner.wait_for_state(run_id, "ready")
    connection = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=20)
    try:
        connection.request("POST", "/acme/echo/words", body=b"{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        first = response.read1(64)

        released = runner.call("POST", "/acme/echo/release", {}, headers={})
        rest = response.read()
    finally:
        connection.close()

    assert first == b"first\n"
    assert released.status == 200
    assert rest == b"second\n"

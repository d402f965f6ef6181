"""Runs through the runner: create, serve through the gateway, and every way a run ends."""

from __future__ import annotations

import logging

import pytest

from .process_backend import ProcessBackend
from .support import ADMIN_TOKEN, FAILING_IMAGE, SLOW_IMAGE, RunnerThread, request, wait_for


def assert_processes_gone(backend: ProcessBackend, run_id: str) -> None:
    assert backend.processes(run_id) is None
    assert run_id not in backend.run_ids()
    assert run_id in backend.removed


def test_run_serves_through_gateway(runner: RunnerThread) -> None:
    created = runner.create_run()

    assert created["state"] == "starting"
    assert created["url"] == f"http://127.0.0.1:{runner.port}/acme/echo"
    assert created["machine_type"] == "S"
    assert "control_token" not in created
    ready = runner.wait_for_state(created["id"], "ready")
    assert ready["upstream"].startswith("http://127.0.0.1:")
    assert ready["node"] == "localhost"

    response = runner.call("POST", "/acme/echo/echo", {"text": "hi"}, headers={})
    assert response.status == 200, response.body
    assert response.json() == {"text": "hi"}
    counted = wait_for(
        lambda: runner.run(created["id"]), lambda run: run["served"] == 1, "served never became 1"
    )
    assert counted["rejected"] == 0


def test_limit_completes_run(runner: RunnerThread, backend: ProcessBackend) -> None:
    run_id = runner.create_run(limit_max_requests=2)["id"]
    runner.wait_for_state(run_id, "ready")
    processes = backend.processes(run_id)
    assert processes is not None

    for text in ("one", "two"):
        response = runner.call("POST", "/acme/echo/echo", {"text": text}, headers={})
        assert response.status == 200, response.body
    completed = runner.wait_for_state(run_id, "completed")

    assert completed["served"] == 2
    assert completed["stop_reason"] == "limit reached"
    assert_processes_gone(backend, run_id)
    assert processes.sidecar.poll() is not None
    assert processes.app.poll() is not None
    after = runner.call("POST", "/acme/echo/echo", {"text": "three"}, headers={})
    assert after.status == 404
    assert after.json() == {"error": "no running app acme/echo"}


def test_delete_completes_run(runner: RunnerThread, backend: ProcessBackend) -> None:
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")

    response = runner.call("DELETE", f"/v1/runs/{run_id}")

    assert response.status == 202
    assert response.json()["state"] == "stopping"
    assert response.json()["stop_reason"] == "deleted"
    completed = runner.wait_for_state(run_id, "completed")
    assert completed["stop_reason"] == "deleted"
    assert_processes_gone(backend, run_id)
    again = runner.call("DELETE", f"/v1/runs/{run_id}")
    assert again.status == 202
    assert again.json()["state"] == "completed"


def test_lease_expiry_completes_run(runner: RunnerThread, backend: ProcessBackend) -> None:
    run_id = runner.create_run(lease_seconds=1.5)["id"]

    completed = runner.wait_for_state(run_id, "completed")

    assert completed["stop_reason"] == "lease expired"
    assert_processes_gone(backend, run_id)


def test_heartbeat_extends_lease(runner: RunnerThread) -> None:
    created = runner.create_run(lease_seconds=600)

    response = runner.call("POST", f"/v1/runs/{created['id']}/heartbeat")

    assert response.status == 204
    assert response.body == b""
    assert runner.run(created["id"])["lease_expires_at"] > created["lease_expires_at"]


def test_heartbeat_of_ended_run_conflicts(runner: RunnerThread) -> None:
    run_id = runner.create_run(machine_type="GPU-H100")["id"]
    assert runner.call("DELETE", f"/v1/runs/{run_id}").status == 202

    response = runner.call("POST", f"/v1/runs/{run_id}/heartbeat")

    assert response.status == 409
    assert response.json() == {"error": f"run {run_id} is completed; start a new run"}


def test_setup_failure_fails_run(runner: RunnerThread, backend: ProcessBackend) -> None:
    run_id = runner.create_run(app_name="failing", image=FAILING_IMAGE)["id"]

    failed = runner.wait_for_state(run_id, "failed")

    assert failed["message"].startswith(
        "the app exited before it was ready; last lines of the app's output:\n"
    )
    assert "RuntimeError: model weights missing" in failed["message"]
    assert_processes_gone(backend, run_id)


def test_starting_app_returns_503(runner: RunnerThread, tmp_path) -> None:
    gate = tmp_path / "gate"
    run_id = runner.create_run(app_name="slow", image=SLOW_IMAGE, app_env={"GATE_FILE": str(gate)})["id"]
    wait_for(
        lambda: runner.run(run_id), lambda run: run["upstream"] != "", "the run was never placed"
    )

    starting = runner.call("POST", "/slow/ping", headers={})
    response = runner.call("POST", "/acme/slow/ping", headers={})

    assert starting.status == 404
    assert response.status == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": "app acme/slow is starting"}
    gate.touch()
    runner.wait_for_state(run_id, "ready")
    served = runner.call("POST", "/acme/slow/ping", headers={})
    assert served.status == 200
    assert served.json() == "pong"


def test_startup_timeout_fails_run(runner: RunnerThread, backend: ProcessBackend, tmp_path) -> None:
    run_id = runner.create_run(
        app_name="slow",
        image=SLOW_IMAGE,
        startup_timeout=1,
        app_env={"GATE_FILE": str(tmp_path / "never")},
    )["id"]

    failed = runner.wait_for_state(run_id, "failed")

    assert failed["message"].startswith(
        "the app was not ready within startup_timeout=1 s; last lines of the app's output:\n"
    )
    assert_processes_gone(backend, run_id)


def test_app_crash_fails_run(runner: RunnerThread, backend: ProcessBackend) -> None:
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")
    processes = backend.processes(run_id)
    assert processes is not None

    processes.app.kill()
    failed = runner.wait_for_state(run_id, "failed")

    assert failed["message"].startswith(
        "the app exited while serving; last lines of the app's output:\n"
    )
    assert "echo: setup finished" in failed["message"]
    assert_processes_gone(backend, run_id)


def test_unknown_machine_type_rejected(runner: RunnerThread) -> None:
    response = runner.call(
        "POST",
        "/v1/runs",
        {"team": "acme", "app_name": "echo", "image": FAILING_IMAGE, "machine_type": ["S", "GPU-X100"]},
    )

    assert response.status == 400
    assert response.json() == {
        "error": "unknown machine type 'GPU-X100'; available: "
        "XS, S, M, L, XL, GPU-A100, GPU-H100, GPU-H200"
    }
    assert runner.call("GET", "/v1/runs").json() == {"runs": []}


def test_machine_type_fallback_uses_offered(runner: RunnerThread) -> None:
    created = runner.create_run(machine_type=["GPU-H100", "GPU-A100", "M"])

    assert created["state"] == "starting"
    assert created["machine_type"] == "M"
    assert created["machine_types"] == ["GPU-H100", "GPU-A100", "M"]


def test_machine_type_not_offered_pends(runner: RunnerThread, backend: ProcessBackend) -> None:
    created = runner.create_run(machine_type="GPU-H100")

    assert created["state"] == "pending"
    assert created["message"] == "no node offers machine type GPU-H100; waiting for capacity"
    response = runner.call("POST", "/acme/echo/echo", {"text": "hi"}, headers={})
    assert response.status == 503
    assert response.json() == {
        "error": "app acme/echo is pending: "
        "no node offers machine type GPU-H100; waiting for capacity"
    }
    assert runner.run(created["id"])["state"] == "pending"

    backend.offered.add("GPU-H100")
    ready = runner.wait_for_state(created["id"], "ready")
    assert ready["message"] == ""
    assert ready["machine_type"] == "GPU-H100"


def test_second_live_run_conflicts(runner: RunnerThread) -> None:
    first = runner.create_run(machine_type="GPU-H100")

    response = runner.call(
        "POST",
        "/v1/runs",
        {"team": "acme", "app_name": "echo", "image": FAILING_IMAGE, "machine_type": "S"},
    )

    assert response.status == 409
    assert response.json() == {
        "error": f"app acme/echo already has run {first['id']} in state pending; "
        f"delete it first with DELETE /v1/runs/{first['id']}"
    }


VALID = {"team": "acme", "app_name": "echo", "image": FAILING_IMAGE, "machine_type": "S"}
NAME_RULE = "lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"team": "Acme"}, f"invalid team 'Acme': expected {NAME_RULE}"),
        ({"team": "-acme"}, f"invalid team '-acme': expected {NAME_RULE}"),
        ({"team": "a" * 64}, f"invalid team '{'a' * 64}': expected {NAME_RULE}"),
        (
            {"team": "v1"},
            "invalid team 'v1': it is reserved for the runner's own paths "
            "(v1, healthz, docs, openapi.json)",
        ),
        (
            {"team": "healthz"},
            "invalid team 'healthz': it is reserved for the runner's own paths "
            "(v1, healthz, docs, openapi.json)",
        ),
        ({"app_name": "my_app"}, f"invalid app_name 'my_app': expected {NAME_RULE}"),
        ({"app_name": None}, "missing field 'app_name'"),
        (
            {"image": "registry.test/echo:latest"},
            "invalid image 'registry.test/echo:latest': expected a reference pinned by digest, "
            "NAME@sha256:<64 hex digits>; push the image and use the digest the registry returned",
        ),
        ({"auth": "secret"}, "invalid auth 'secret': expected one of public, private, shared"),
        ({"limit_max_requests": -1}, "invalid limit_max_requests -1: expected an integer >= 0"),
        ({"limit_max_requests": True}, "invalid limit_max_requests True: expected an integer >= 0"),
        ({"max_concurrency": 0}, "invalid max_concurrency 0: expected an integer >= 1"),
        ({"max_queue": -5}, "invalid max_queue -5: expected an integer >= 0"),
        ({"request_timeout": 0}, "invalid request_timeout 0: expected a number of seconds > 0"),
        ({"lease_seconds": "30"}, "invalid lease_seconds '30': expected a number of seconds > 0"),
        (
            {"machine_type": []},
            "invalid machine_type []: expected a name or a non-empty list of names, "
            "in order of preference",
        ),
        (
            {"app_env": {"ORCH_UPSTREAM": "x"}},
            "invalid app_env entry 'ORCH_UPSTREAM': names starting with ORCH_ are set by the runner",
        ),
        (
            {"colour": "blue"},
            "unknown field 'colour'; expected some of: app_env, app_name, auth, endpoints, env, "
            "image, lease_seconds, limit_max_requests, machine_type, max_concurrency, max_queue, "
            "request_timeout, startup_timeout, team",
        ),
    ],
)
def test_invalid_run_request_rejected(runner: RunnerThread, change: dict, error: str) -> None:
    response = runner.call("POST", "/v1/runs", {**VALID, **change})

    assert response.status == 400
    assert response.json() == {"error": error}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid JSON body: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (b"[1, 2]", "invalid JSON body: expected an object, got list"),
    ],
)
def test_bad_json_rejected(runner: RunnerThread, body: bytes, error: str) -> None:
    response = runner.call("POST", "/v1/runs", body)

    assert response.status == 400
    assert response.json() == {"error": error}


def test_unknown_run_not_found(runner: RunnerThread) -> None:
    response = runner.call("GET", "/v1/runs/0123456789abcdef0123456789abcdef")

    assert response.status == 404
    assert response.json() == {"error": "run 0123456789abcdef0123456789abcdef not found"}


def test_unknown_endpoint_and_method(runner: RunnerThread) -> None:
    unknown = runner.call("GET", "/v1/nothing")
    wrong_method = runner.call("PUT", "/v1/runs")

    assert unknown.status == 404
    assert unknown.json() == {"error": "no endpoint GET /v1/nothing; see /docs for the API"}
    assert wrong_method.status == 405
    assert wrong_method.headers["allow"] == "POST, GET"
    assert wrong_method.json() == {"error": "method PUT not allowed on /v1/runs; use POST or GET"}


def test_list_runs_filters(runner: RunnerThread) -> None:
    first = runner.create_run(machine_type="GPU-H100")
    second = runner.create_run(team="globex", machine_type="GPU-H100")
    runner.call("DELETE", f"/v1/runs/{first['id']}")

    everything = runner.call("GET", "/v1/runs").json()["runs"]
    globex = runner.call("GET", "/v1/runs?team=globex").json()["runs"]
    live = runner.call("GET", "/v1/runs?live=1").json()["runs"]

    assert [run["id"] for run in everything] == [first["id"], second["id"]]
    assert [run["id"] for run in globex] == [second["id"]]
    assert [run["id"] for run in live] == [second["id"]]


def test_machine_types_listed(runner: RunnerThread) -> None:
    response = runner.call("GET", "/v1/machine-types")

    assert response.status == 200
    machine_types = {entry["name"]: entry for entry in response.json()["machine_types"]}
    assert list(machine_types) == ["XS", "S", "M", "L", "XL", "GPU-A100", "GPU-H100", "GPU-H200"]
    assert machine_types["S"]["offered"] is True
    assert machine_types["GPU-H200"]["offered"] is False
    assert machine_types["GPU-H200"]["gpus"] == 1
    assert machine_types["M"]["memory_bytes"] == 2 * 2**30


def test_healthz_counts_live_runs(runner: RunnerThread) -> None:
    runner.create_run(machine_type="GPU-H100")

    response = request(runner.port, "GET", "/healthz")

    assert response.status == 200
    assert response.json() == {"status": "ok", "runs": 1}


def test_pending_run_lease_expires(runner: RunnerThread) -> None:
    run_id = runner.create_run(machine_type="GPU-H100", lease_seconds=0.5)["id"]

    completed = runner.wait_for_state(run_id, "completed")

    assert completed["stop_reason"] == "lease expired"
    assert completed["message"] == "stopped before it was placed"
    assert completed["upstream"] == ""


def test_transitions_logged_without_secrets(
    runner: RunnerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orchestrator.runner")
    key = runner.call("POST", "/v1/keys", {"team": "acme"}).json()["key"]
    run_id = runner.create_run()["id"]
    runner.wait_for_state(run_id, "ready")
    runner.call("DELETE", f"/v1/runs/{run_id}")
    runner.wait_for_state(run_id, "completed")

    messages = [record.getMessage() for record in caplog.records]

    assert f"run {run_id} (acme/echo): starting -> ready" in messages
    assert f"run {run_id} (acme/echo): ready -> stopping" in messages
    assert f"run {run_id} (acme/echo): stopping -> completed (deleted)" in messages
    assert f"run {run_id}: delete requested by the admin" in messages
    assert ADMIN_TOKEN not in caplog.text
    assert key.split(":", 1)[1] not in caplog.text


def test_null_fields_take_defaults(runner: RunnerThread) -> None:
    created = runner.create_run(
        machine_type="GPU-H100",
        env=None,
        auth=None,
        limit_max_requests=None,
        startup_timeout=None,
        endpoints=None,
        app_env=None,
    )

    assert created["env"] == "main"
    assert created["auth"] == "public"
    assert created["limit_max_requests"] == 0
    assert created["startup_timeout"] == 300.0
    assert created["endpoints"] == []
    assert created["app_env"] == {}

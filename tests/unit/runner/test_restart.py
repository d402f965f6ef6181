"""A runner restart: runs with processes are adopted, the others fail, strays are removed."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.machines import load_catalogue
from orchestrator.runner.models import Run

from .process_backend import ProcessBackend
from .support import ECHO_IMAGE, RunnerThread, wait_for


def test_restart_adopts_live_run(
    start_runner: Callable[[], RunnerThread], backend: ProcessBackend
) -> None:
    first = start_runner()
    created = first.create_run(lease_seconds=600)
    ready = first.wait_for_state(created["id"], "ready")
    first.stop()

    second = start_runner()
    adopted = second.run(created["id"])

    assert adopted["state"] == "ready"
    assert adopted["upstream"] == ready["upstream"]
    assert adopted["lease_expires_at"] > ready["lease_expires_at"]
    assert created["id"] in backend.run_ids()
    response = second.call("POST", "/acme/echo/echo", {"text": "again"}, headers={})
    assert response.status == 200, response.body
    assert response.json() == {"text": "again"}


def test_restart_fails_run_without_processes(
    start_runner: Callable[[], RunnerThread], backend: ProcessBackend
) -> None:
    first = start_runner()
    run_id = first.create_run()["id"]
    first.wait_for_state(run_id, "ready")
    first.stop()
    backend.kill(run_id)

    second = start_runner()
    failed = second.run(run_id)

    assert failed["state"] == "failed"
    assert failed["message"] == "containers were gone when the runner restarted"
    assert run_id in backend.removed


def test_restart_removes_unknown_processes(
    start_runner: Callable[[], RunnerThread], backend: ProcessBackend
) -> None:
    stray = Run(
        id="f" * 32,
        app_name="echo",
        team="acme",
        env="main",
        image=ECHO_IMAGE,
        machine_type="S",
        control_token="stray-token",
    )
    backend.start(stray, load_catalogue()["S"])
    processes = backend.processes(stray.id)
    assert processes is not None

    start_runner()

    assert stray.id in backend.removed
    assert stray.id not in backend.run_ids()
    assert processes.sidecar.poll() is not None
    assert processes.app.poll() is not None


def test_restart_keeps_pending_run(
    start_runner: Callable[[], RunnerThread], backend: ProcessBackend
) -> None:
    first = start_runner()
    run_id = first.create_run(machine_type="GPU-A100", lease_seconds=600)["id"]
    first.stop()
    backend.offered.add("GPU-A100")

    second = start_runner()

    ready = second.wait_for_state(run_id, "ready")
    assert ready["machine_type"] == "GPU-A100"
    assert wait_for(backend.run_ids, lambda ids: run_id in ids, "the run has no processes")

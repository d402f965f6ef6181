"""Remote runs end to end: the compose stack (runner, registry, sidecar image) on this engine."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from orchestrator.engine import ContainerEngine
from orchestrator.registry import push

from .network import free_port
from .orch_process import OrchProcess

REPOSITORY = Path(__file__).resolve().parents[2]

APP = """
import time
import orchestrator


class Remote(orchestrator.App, max_concurrency=2):
    @orchestrator.endpoint("/work")
    def work(self, seconds: float = 0.0) -> dict:
        time.sleep(seconds)
        return {"slept": seconds}

    def teardown(self):
        print("teardown ran", flush=True)
"""



class Stack:
    """One compose project with its own ports, network and volumes."""

    def __init__(self) -> None:
        self.name = f"orchtest{uuid.uuid4().hex[:6]}"
        self.runner_port = free_port()
        self.registry_port = free_port()
        self.admin_token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.name,
            "ORCH_STACK_NAME": self.name,
            "ORCH_RUNNER_PORT": str(self.runner_port),
            "ORCH_REGISTRY_PORT": str(self.registry_port),
            "ORCH_RUNNER_ADMIN_TOKEN": self.admin_token,
            "ORCH_REGISTRY_IMAGE": os.environ.get("ORCH_TEST_REGISTRY_IMAGE", "orchestrator-local/registry:2"),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runner_port}"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def client_env(self, **extra: str) -> dict[str, str]:
        return {
            "ORCH_RUNNER_URL": self.url,
            "ORCH_RUNNER_KEY": f"Bearer {self.admin_token}",
            "ORCH_REGISTRY": self.registry,
            **extra,
        }

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-f", str(REPOSITORY / "compose.yaml"), *args],
                              env=self.env, cwd=REPOSITORY, capture_output=True, text=True, check=check)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        logs = self.compose("logs", "--tail", "50", check=False).stdout
        raise AssertionError(f"runner not healthy within {timeout}s:\n{logs}")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def stack(engine):
    stack = Stack()
    result = stack.compose("up", "-d", "--build", check=False)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        stack.wait_healthy()
        yield stack
    finally:
        containers = ContainerEngine(engine)
        for item in containers.list(f"org.orchestrator.managed-by={stack.name}"):
            containers.remove(item["Id"])
        stack.compose("down", "-v", "--rmi", "local", check=False)
        for image in (f"{stack.name}/runner:latest", f"{stack.name}/sidecar:latest"):
            if engine.image(image):
                engine.remove_image(image, force=True)


@pytest.fixture
def app_ref(project):
    return f"{project.write('remote.py', APP)}::Remote"


def runs_of(stack, app_name):
    return [run for run in stack.api("GET", "/v1/runs").json()["runs"] if run["app_name"] == app_name]


def start_remote(stack, reference, *flags, **env):
    app_name = f"r-{uuid.uuid4().hex[:6]}"
    process = OrchProcess("run", reference, "--app-name", app_name, "--team", "vision", *flags,
                          env=stack.client_env(**env))
    return process, app_name


def test_remote_run_serves_and_ctrl_c_deletes(stack, app_ref):
    run, app_name = start_remote(stack, app_ref)
    try:
        url = run.wait_ready()
        response = requests.post(f"{stack.url}/vision/{app_name}/work", json={}, timeout=30)
        run.send(signal.SIGINT)
        exit_code = run.wait(90)
    finally:
        run.kill()

    assert url == f"{stack.url}/vision/{app_name}"
    assert response.status_code == 200
    assert response.json() == {"slept": 0.0}
    assert exit_code == 0, run.output
    assert [item["state"] for item in runs_of(stack, app_name)] == ["completed"]


def test_remote_limit_reached_deletes_run(stack, app_ref):
    run, app_name = start_remote(stack, app_ref, "--limit-max-requests", "2")
    try:
        url = run.wait_ready()
        statuses = [requests.post(url + "/work", json={}, timeout=30).status_code for _ in range(2)]
        exit_code = run.wait(90)
    finally:
        run.kill()

    assert statuses == [200, 200]
    assert exit_code == 0, run.output
    assert any("served 2 request(s)" in line for line in run.stderr), run.output
    final = runs_of(stack, app_name)[0]
    assert final["state"] == "completed"
    assert final["served"] == 2


@pytest.mark.parametrize(("mode", "expected"), [
    ("private", (401, 401, 200, 401)),
    ("shared", (401, 401, 200, 200)),
])
def test_remote_auth_matrix(stack, app_ref, mode, expected):
    own = stack.api("POST", "/v1/keys", json={"team": "vision"}).json()["key"]
    other = stack.api("POST", "/v1/keys", json={"team": "audio"}).json()["key"]
    wrong = own.split(":")[0] + ":" + "x" * 43
    run, app_name = start_remote(stack, app_ref, "--auth", mode)
    try:
        url = run.wait_ready()
        statuses = []
        for key in (None, wrong, own, other):
            headers = {"Authorization": f"Key {key}"} if key else {}
            statuses.append(requests.post(url + "/work", json={}, headers=headers, timeout=30).status_code)
        run.send(signal.SIGINT)
        run.wait(90)
    finally:
        run.kill()

    assert tuple(statuses) == expected


def test_remote_kill_9_lease_expires(stack, app_ref, engine):
    run, app_name = start_remote(stack, app_ref, ORCH_LEASE_SECONDS="4")
    run.wait_ready()
    run.kill()

    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = runs_of(stack, app_name)[0]
        if state["state"] == "completed":
            break
        time.sleep(1)
    assert state["state"] == "completed"
    assert state["stop_reason"] == "lease expired"
    containers = ContainerEngine(engine).list(f"org.orchestrator.run={state['id']}")
    assert containers == []


def test_runner_restart_keeps_run_serving(stack, app_ref):
    run, app_name = start_remote(stack, app_ref)
    try:
        url = run.wait_ready()
        stack.compose("restart", "runner")
        stack.wait_healthy()
        response = requests.post(url + "/work", json={}, timeout=30)
        run.send(signal.SIGINT)
        exit_code = run.wait(90)
    finally:
        run.kill()

    assert response.status_code == 200
    assert exit_code == 0, run.output


def test_unknown_machine_type_is_400_with_list(stack):
    body = {"app_name": "unknown-type", "team": "vision", "machine_type": "GPU-X100",
            "image": "127.0.0.1:5000/orchestrator-app/x@sha256:" + "0" * 64}
    response = stack.api("POST", "/v1/runs", json=body)

    assert response.status_code == 400
    assert response.json() == {
        "error": "unknown machine type 'GPU-X100'; available: XS, S, M, L, XL, GPU-A100, GPU-H100, GPU-H200"
    }


def test_cli_rejects_unknown_machine_type_before_pushing(stack, app_ref):
    run, _ = start_remote(stack, app_ref, "--machine-type", "GPU-X100")
    exit_code = run.wait(120)

    assert exit_code == 2
    errors = [line for line in run.stderr if line.startswith("Error:")]
    assert errors == [
        "Error: unknown machine type 'GPU-X100'; did you mean 'GPU-H100'? Available: XS, S, M, L, "
        "XL, GPU-A100, GPU-H100, GPU-H200"
    ], run.output
    assert not any("pushed" in line for line in run.stderr)


def test_machine_type_not_offered_stays_pending(stack, app_ref):
    run, app_name = start_remote(stack, app_ref, "--machine-type", "GPU-H100")
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(line.startswith("pending:") for line in run.stderr):
            time.sleep(0.5)
        pending = [line for line in run.stderr if line.startswith("pending:")]
        run.send(signal.SIGINT)
        exit_code = run.wait(90)
    finally:
        run.kill()

    assert pending == ["pending: no node offers machine type GPU-H100; waiting for capacity"], run.output
    assert exit_code == 0


def test_push_unchanged_image_uploads_nothing(stack, engine, app_ref):
    from orchestrator import refs
    from orchestrator.build.image import ImageBuilder
    from orchestrator.build.progress import PlainProgress

    image = ImageBuilder(engine, PlainProgress()).ensure(refs.resolve(app_ref))
    first = push(engine, image.reference, stack.registry)
    second = push(engine, image.reference, stack.registry)

    assert second.digest == first.digest
    assert second.uploaded_layers == 0
    assert second.existing_layers > 0


def test_registry_down_retries_then_fails(stack, app_ref):
    stack.compose("stop", "registry")
    try:
        run, _ = start_remote(stack, app_ref, ORCH_PUSH_ATTEMPTS="3")
        exit_code = run.wait(300)
    finally:
        stack.compose("start", "registry")

    assert exit_code == 1
    output = "\n".join(run.stderr)
    assert output.count("retrying in") == 2, run.output
    errors = [line for line in run.stderr if line.startswith("Error:")]
    assert errors[0].startswith(f"Error: cannot push orchestrator-app/")
    assert f"to the registry {stack.registry} after 3 attempt(s)" in errors[0]


def test_runs_ls_and_stop(stack, app_ref):
    run, app_name = start_remote(stack, app_ref)
    env = stack.client_env()
    try:
        run.wait_ready()
        listing = OrchProcess("runs", "ls", "--team", "vision", env=env)
        assert listing.wait(60) == 0, listing.output
        line = next(line for line in listing.stdout if f"vision/{app_name}" in line)
        run_id = line.split()[0]
        stop = OrchProcess("runs", "stop", run_id, env=env)
        assert stop.wait(60) == 0, stop.output
        exit_code = run.wait(90)
    finally:
        run.kill()

    assert "ready" in line
    assert exit_code == 0, run.output
    assert runs_of(stack, app_name)[0]["state"] == "completed"

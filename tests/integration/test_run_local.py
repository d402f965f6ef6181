"""``orch run --local`` end to end: real CLI, real engine, app behind the sidecar."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import pytest
import requests

from orchestrator.engine import ContainerEngine

from .orch_process import OrchProcess

RUN_LABEL = "org.orchestrator.run"

APP_SOURCE = """
import time
import orchestrator


class Slow(orchestrator.App, max_concurrency={concurrency}, max_queue={queue}):
    request_timeout = {timeout}

    def setup(self):
        print("setup ran", flush=True)

    @orchestrator.endpoint("/work")
    def work(self, seconds: float = 0.0) -> dict:
        time.sleep(seconds)
        return {{"slept": seconds}}

    def teardown(self):
        print("teardown ran", flush=True)
"""


@pytest.fixture
def containers(engine):
    return ContainerEngine(engine)


@pytest.fixture(autouse=True)
def no_leftover_containers(containers):
    """Fail a test that leaves a run's container behind, and remove it."""
    before = {item["Id"] for item in containers.list(RUN_LABEL)}
    yield
    deadline = time.monotonic() + 20
    leftovers = []
    while time.monotonic() < deadline:
        leftovers = [item for item in containers.list(RUN_LABEL) if item["Id"] not in before]
        if not leftovers:
            return
        time.sleep(0.5)
    for item in leftovers:
        containers.remove(item["Id"])
    pytest.fail(f"containers left behind: {[item['Names'] for item in leftovers]}")


def write_app(project, concurrency=1, queue=100, timeout=30):
    source = APP_SOURCE.format(concurrency=concurrency, queue=queue, timeout=timeout)
    path = project.write("slow.py", source)
    return f"{path}::Slow"


def start(reference, *flags, env=None):
    process = OrchProcess("run", reference, "--local", "--app-name", f"t-{time.monotonic_ns() % 10**8}", *flags, env=env)
    return process


def post(url, path="/work", timeout=30, **body):
    return requests.post(url + path, json=body, timeout=timeout)


def test_limit_under_concurrent_clients(project, containers):
    run = start(write_app(project, concurrency=2), "--limit-max-requests", "5")
    try:
        url = run.wait_ready()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            responses = list(pool.map(lambda _: post(url, seconds=0.3), range(20)))
        exit_code = run.wait(60)
    finally:
        run.kill()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 5 + [503] * 15
    rejected = [response.json() for response in responses if response.status_code == 503]
    assert rejected[0] == {"error": "request limit reached", "limit": 5}
    assert exit_code == 0, run.output
    assert "teardown ran" in run.stdout
    assert any("served 5 request(s)" in line for line in run.stderr), run.output
    assert [item for item in containers.list(RUN_LABEL) if item["Labels"].get("org.orchestrator.app", "").startswith("t-")] == []


def test_request_timeout_gives_504(project):
    run = start(write_app(project, timeout=1))
    try:
        url = run.wait_ready()
        response = post(url, seconds=3)
        run.send(signal.SIGINT)
        exit_code = run.wait(60)
    finally:
        run.kill()

    assert response.status_code == 504
    assert exit_code == 0, run.output


def test_queue_full_gives_503(project):
    run = start(write_app(project, concurrency=1, queue=1))
    try:
        url = run.wait_ready()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(post, url, seconds=1.5)]
            time.sleep(0.3)
            futures.append(pool.submit(post, url, seconds=0))
            time.sleep(0.3)
            futures.append(pool.submit(post, url, seconds=0))
            statuses = [future.result().status_code for future in futures]
        run.send(signal.SIGINT)
        run.wait(60)
    finally:
        run.kill()

    assert statuses == [200, 200, 503]


def test_ctrl_c_runs_teardown_and_removes_containers(project, containers):
    run = start(write_app(project))
    try:
        url = run.wait_ready()
        assert post(url).status_code == 200
        run.send(signal.SIGINT)
        exit_code = run.wait(60)
    finally:
        run.kill()

    assert exit_code == 0, run.output
    assert "teardown ran" in run.stdout


def test_kill_9_leaves_no_container(project, containers):
    run = start(write_app(project), env={"ORCH_LEASE_SECONDS": "3"})
    url = run.wait_ready()
    run_ids = {item["Labels"][RUN_LABEL] for item in containers.list(RUN_LABEL)}
    run.kill()

    deadline = time.monotonic() + 30
    remaining = None
    while time.monotonic() < deadline:
        remaining = [item for item in containers.list(RUN_LABEL) if item["Labels"][RUN_LABEL] in run_ids]
        if not remaining:
            break
        time.sleep(0.5)
    assert remaining == []
    with pytest.raises(requests.ConnectionError):
        post(url, timeout=2)


def test_two_apps_at_once(project):
    first = start(write_app(project))
    second = start(write_app(project))
    try:
        first_url = first.wait_ready()
        second_url = second.wait_ready()
        assert first_url != second_url
        assert post(first_url).status_code == 200
        assert post(second_url).status_code == 200
    finally:
        for run in (first, second):
            run.send(signal.SIGINT)
        for run in (first, second):
            run.wait(60)
            run.kill()


def test_gpu_machine_type_without_nvidia_runtime(project):
    run = start(write_app(project), "--machine-type", "GPU-H100")
    exit_code = run.wait(300)

    assert exit_code == 1
    error = [line for line in run.stderr if line.startswith("Error:")]
    assert error == [
        "Error: machine type GPU-H100 needs 1 GPU(s), but this Docker engine cannot provide GPUs "
        "(could not select device driver \"\" with capabilities: [[gpu]]). Install the NVIDIA "
        "Container Toolkit and restart Docker, or run on a CPU machine type, e.g. --machine-type M."
    ], run.output
    # The check comes before the build, so no CUDA image is pulled or built in vain.
    assert "Building environment" not in run.output


def test_failing_setup_shows_log_tail(project):
    path = project.write("broken.py", """
import orchestrator

class Broken(orchestrator.App):
    def setup(self):
        raise RuntimeError("model file missing: /models/weights.bin")

    @orchestrator.endpoint("/x")
    def x(self) -> dict:
        return {}
""")
    run = start(f"{path}::Broken")
    exit_code = run.wait(120)

    assert exit_code == 1
    error = "\n".join(run.stderr[next(i for i, line in enumerate(run.stderr) if line.startswith("Error:")):])
    assert error.startswith("Error: the app t-")
    assert "stopped before it was ready" in error
    assert "RuntimeError: model file missing: /models/weights.bin" in error


def test_pydantic_input_error_is_422(project):
    path = project.write("typed.py", """
import orchestrator
from pydantic import BaseModel, Field


class Resize(BaseModel):
    width: int = Field(ge=1)


class Typed(orchestrator.App):
    requirements = ["pydantic==2.11.7"]

    @orchestrator.endpoint("/resize")
    def resize(self, request: Resize) -> dict:
        return {"width": request.width}
""")
    run = start(f"{path}::Typed")
    try:
        url = run.wait_ready()
        bad = post(url, "/resize", width=0)
        good = post(url, "/resize", width=3)
        run.send(signal.SIGINT)
        run.wait(60)
    finally:
        run.kill()

    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["width"]
    assert good.json() == {"width": 3}


def test_streaming_passes_chunks(project):
    path = project.write("stream.py", """
import time
import orchestrator


class Stream(orchestrator.App):
    @orchestrator.endpoint("/count")
    def count(self, start: int):
        for number in range(start, 0, -1):
            yield f"{number}\\n"
            time.sleep(0.5)
""")
    run = start(f"{path}::Stream")
    try:
        url = run.wait_ready()
        started = time.monotonic()
        arrivals = []
        with requests.post(url + "/count", json={"start": 3}, stream=True, timeout=30) as response:
            for chunk in response.iter_content(chunk_size=None):
                arrivals.append((chunk.decode(), time.monotonic() - started))
        run.send(signal.SIGINT)
        run.wait(60)
    finally:
        run.kill()

    assert "".join(chunk for chunk, _ in arrivals) == "3\n2\n1\n"
    assert arrivals[0][1] < 1.0


def test_function_called_once(project):
    path = project.write("once.py", """
import orchestrator

@orchestrator.function
def answer():
    return {"answer": 42}

@orchestrator.function
def fails():
    raise ValueError("bad input file")
""")
    ok = OrchProcess("run", f"{path}::answer", "--local")
    assert ok.wait(300) == 0, ok.output
    assert '{"answer": 42}' in ok.stdout

    failing = OrchProcess("run", f"{path}::fails", "--local")
    assert failing.wait(300) == 1
    assert any("ValueError: bad input file" in line for line in failing.stdout + failing.stderr)

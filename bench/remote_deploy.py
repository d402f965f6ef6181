#!/usr/bin/env python3
"""Benchmark a remote deploy: ``orch run`` against the runner, image already in the registry.

The script brings up its own compose stack (unique project name and ports),
builds and pushes the app image once, then times, for each repetition, from
starting ``orch run`` (without ``--local``) to the first 200 through the
runner's gateway. It also records how many layers each push uploaded. With
the image already in the registry, the goal is zero. The stack and the images
it built are removed at the end.

Run from the repository root:  .venv/bin/python bench/remote_deploy.py
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from support import (
    DEFAULT_BASE_IMAGE, DEFAULT_UV_IMAGE, ORCH, REPOSITORY, free_port, images_with_label,
    machine_description, markdown_table, post_status, print_machine, remove_images, run_id,
    save_results, summarize,
)

APP_SOURCE = '''\
import orchestrator


class Deploy{run}(orchestrator.App, machine_type="XS"):
    @orchestrator.endpoint("/echo")
    def echo(self, text: str = "") -> dict:
        return {{"text": text}}
'''

PUSH_LINE = re.compile(r"pushed \S+ \((\d+) layer\(s\) uploaded, (\d+) already in the registry\)")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=5, help="timed deploys (default 5)")
    return parser.parse_args()


class Stack:
    """The compose stack of this benchmark run."""

    def __init__(self, run: str) -> None:
        self.name = f"orchbench{run}"
        self.runner_port = free_port()
        self.registry_port = free_port()
        self.token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.name,
            "ORCH_STACK_NAME": self.name,
            "ORCH_RUNNER_PORT": str(self.runner_port),
            "ORCH_REGISTRY_PORT": str(self.registry_port),
            "ORCH_RUNNER_ADMIN_TOKEN": self.token,
            "ORCH_REGISTRY_IMAGE": os.environ.get("ORCH_REGISTRY_IMAGE", "orchestrator-local/registry:2"),
            "ORCH_BASE_IMAGE": os.environ.get("ORCH_BASE_IMAGE", DEFAULT_BASE_IMAGE),
        }

    def compose(self, *args: str) -> None:
        subprocess.run(["docker-compose", "-f", str(REPOSITORY / "compose.yaml"), *args],
                       env=self.env, cwd=REPOSITORY, check=True, capture_output=True, text=True)

    def up(self) -> None:
        self.compose("up", "-d", "--build")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _get_ok(self.runner_port, "/healthz"):
                return
            time.sleep(0.5)
        raise RuntimeError("the runner did not become healthy within 120 s")

    def down(self) -> None:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=org.orchestrator.managed-by={self.name}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        subprocess.run(["docker-compose", "-f", str(REPOSITORY / "compose.yaml"), "down", "-v"],
                       env=self.env, cwd=REPOSITORY, capture_output=True)
        subprocess.run(["docker", "rmi", "-f", f"{self.name}/runner:latest", f"{self.name}/sidecar:latest"],
                       capture_output=True)

    def client_env(self, home: Path) -> dict[str, str]:
        return {
            **os.environ,
            "ORCH_RUNNER_URL": f"http://127.0.0.1:{self.runner_port}",
            "ORCH_RUNNER_KEY": f"Bearer {self.token}",
            "ORCH_REGISTRY": f"127.0.0.1:{self.registry_port}",
            "ORCH_BASE_IMAGE": os.environ.get("ORCH_BASE_IMAGE", DEFAULT_BASE_IMAGE),
            "ORCH_UV_IMAGE": os.environ.get("ORCH_UV_IMAGE", DEFAULT_UV_IMAGE),
            "ORCH_HOME": str(home),
        }


def _get_ok(port: int, path: str) -> bool:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def deploy_once(stack: Stack, reference: str, app_name: str, env: dict[str, str]) -> tuple[float, tuple[int, int]]:
    """Start ``orch run``; return seconds to the first 200 and the push's (uploaded, existing) layers."""
    path = f"/bench/{app_name}/echo"
    started = time.perf_counter()
    process = subprocess.Popen([str(ORCH), "run", reference, "--team", "bench", "--app-name", app_name],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if post_status(stack.runner_port, path, b"{}") == 200:
                elapsed = time.perf_counter() - started
                break
            if process.poll() is not None:
                raise RuntimeError(f"orch run exited with {process.returncode}: {process.stderr.read()[-2000:]}")
            time.sleep(0.02)
        else:
            raise RuntimeError("no 200 within 180 s")
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    match = PUSH_LINE.search(stderr)
    layers = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    return elapsed, layers


def main() -> int:
    arguments = parse_arguments()
    run = run_id()
    machine = machine_description()
    print_machine(machine)
    stack = Stack(run)
    with tempfile.TemporaryDirectory(prefix="orch-bench-remote-") as folder:
        app_file = Path(folder) / "deploy.py"
        app_file.write_text(APP_SOURCE.format(run=run))
        reference = f"{app_file}::Deploy{run}"
        env = stack.client_env(Path(folder) / "orch-home")
        try:
            stack.up()
            first_time, first_layers = deploy_once(stack, reference, f"deploy-{run}", env)
            print(f"first deploy (push uploads the image): {first_time:.2f} s, layers {first_layers}")
            times, layers = [], []
            for index in range(arguments.repetitions):
                elapsed, pushed = deploy_once(stack, reference, f"deploy-{run}", env)
                times.append(elapsed)
                layers.append(pushed)
                print(f"deploy {index + 1}: {elapsed:.2f} s to the first 200, push uploaded {pushed[0]} layer(s)")
        finally:
            stack.down()
            images = images_with_label(f"org.orchestrator.app=deploy{run}")
            remove_images(images)

    summary = summarize(times)
    print()
    print(markdown_table(
        ["measure", "result", "goal"],
        [
            ["remote deploy to first 200, image in the registry", summary.format(), "1.0 s or less"],
            ["layers uploaded by a push of an unchanged image", ", ".join(str(item[0]) for item in layers), "0"],
        ],
    ))
    save_results("remote_deploy", {"machine": machine, "first": first_time, "times": times, "layers": layers})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

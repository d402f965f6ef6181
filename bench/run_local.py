#!/usr/bin/env python3
"""Benchmark a warm ``orch run --local`` against a raw ``docker run`` of the same image.

Both sides start from a built image. Each is timed from starting the command
to the first 200 from the app's endpoint. ``orch`` is polled through the
sidecar on the ``--port`` it was given, once its banner reports the app
ready, and ``docker run -d -p 127.0.0.1::8000`` on the port that ``docker
port`` reports, once it returned. The sides take turns going first. After
each repetition the CLI gets SIGINT (its graceful stop) and the raw container
is removed with ``docker rm -f``; neither stop is timed.

Run from the repository root:  .venv/bin/python bench/run_local.py
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import (
    DEFAULT_UV_IMAGE,
    DEFAULT_BASE_IMAGE, DOCKER, ORCH, docker, free_port, images_with_label, machine_description,
    markdown_table, post_status, print_machine, ratio, remove_images, run_id, save_results,
    summarize, timed_run,
)

from orchestrator.refs import default_app_name

# Machine type M gives the app 2 CPUs, all the cores of the benchmark machine,
# so the app container runs without a CPU quota, like the raw docker run. XS's
# 0.5 CPU quota slowed the runtime's start-up by about 0.25 s.
APP_SOURCE = '''\
import orchestrator


class {name}(orchestrator.App, machine_type="M"):
    env = {{"BENCH_RUN": "{run}"}}

    @orchestrator.endpoint("/echo")
    def echo(self, text: str = "") -> dict:
        return {{"text": text}}
'''

ENDPOINT = "/echo"
BODY = b'{"text": "ready?"}'
POLL_SECONDS = 0.01
READY_LINE = "is ready on the local engine"
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0
# Timed runs that had to build the sidecar image are repeated up to this often.
MAX_ATTEMPTS = 3


def wait_for_200(port_of, deadline: float, process: subprocess.Popen | None = None) -> None:
    """Poll the endpoint until it returns 200; ``port_of`` returns the port once known."""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"orch run exited with {process.returncode} before the app responded")
        port = port_of()
        if port is not None and post_status(port, ENDPOINT, BODY) == 200:
            return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"no 200 from {ENDPOINT} within {READY_TIMEOUT_SECONDS:g}s")


class Bench:
    """The app, its image and the two ways of starting it."""

    def __init__(self, root: Path, run: str, env: dict[str, str]) -> None:
        self.run = run
        self.env = env
        self.name = f"BenchRun{run}"
        self.app_name = default_app_name(self.name)
        self.folder = root / "project"
        self.folder.mkdir()
        (self.folder / "app.py").write_text(APP_SOURCE.format(name=self.name, run=run))
        self.reference = f"app.py::{self.name}"
        self.logs = root / "logs"
        self.logs.mkdir()
        self.image = ""
        self.env_tag = ""
        self.container_label = f"org.orchestrator.bench={run}"
        self.sidecars_before = set(images_with_label("org.orchestrator.kind=sidecar"))
        self.sidecar_tags: set[str] = set()

    def build(self) -> None:
        _, completed = timed_run([str(ORCH), "build", self.reference], cwd=self.folder, env=self.env)
        self.image = completed.stdout.split()[0]
        key = docker("image", "inspect", "--format",
                     '{{index .Config.Labels "org.orchestrator.env-key"}}', self.image).stdout.strip()
        self.env_tag = f"orchestrator-env:{key[:32]}"

    def orch_run(self, name: str) -> tuple[float, bool]:
        """Time one run; return the seconds and whether it built the sidecar image."""
        port = free_port()
        log_path = self.logs / f"orch-{name}.log"
        log = log_path.open("w")
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(ORCH), "run", self.reference, "--local", "--port", str(port)],
            cwd=self.folder, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        def port_once_ready() -> int | None:
            # Polled only once the banner reports ready, as a user would. Polls
            # of the published port while the container's network was still
            # being set up all hung for about 1 s, most likely until the
            # kernel's next ARP try for the container's address.
            return port if READY_LINE in log_path.read_text() else None

        try:
            wait_for_200(port_once_ready, time.monotonic() + READY_TIMEOUT_SECONDS, process)
            elapsed = time.perf_counter() - started
        finally:
            self._stop(process)
            log.close()
        built_sidecar = "Building the sidecar image" in log_path.read_text()
        if built_sidecar:
            # Sidecar sources changed since the last run, so this run built a
            # new sidecar image; it is this benchmark's to remove.
            self.sidecar_tags |= set(images_with_label("org.orchestrator.kind=sidecar")) - self.sidecars_before
        return elapsed, built_sidecar

    def _stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"warning: orch run did not stop within {STOP_TIMEOUT_SECONDS:g}s; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self._remove_leftover_containers()

    def _remove_leftover_containers(self) -> None:
        # The run's containers are auto-removed once they stop; give them a
        # moment, then remove whatever is left so the next repetition starts clean.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            left = docker("ps", "-aq", "--filter", f"label=org.orchestrator.app={self.app_name}").stdout.split()
            if not left:
                return
            time.sleep(0.2)
        print(f"warning: removing containers left behind by orch run: {left}")
        docker("rm", "-f", *left, check=False)

    def docker_run(self) -> float:
        container: list[str] = []
        port: list[int] = []

        def port_of() -> int | None:
            if not port:
                output = docker("port", container[0], "8000/tcp").stdout.split()[0]
                port.append(int(output.rsplit(":", 1)[1]))
            return port[0]

        started = time.perf_counter()
        try:
            created = docker("run", "-d", "-p", "127.0.0.1::8000", "-e", "ORCH_APP_HOST=0.0.0.0",
                             "--label", self.container_label, self.image)
            container.append(created.stdout.strip())
            wait_for_200(port_of, time.monotonic() + READY_TIMEOUT_SECONDS)
            elapsed = time.perf_counter() - started
        finally:
            if container:
                docker("rm", "-f", container[0], check=False)
        return elapsed

    def cleanup(self) -> None:
        left = docker("ps", "-aq", "--filter", f"label={self.container_label}").stdout.split()
        if left:
            docker("rm", "-f", *left, check=False)
        remove_images(images_with_label(f"org.orchestrator.app={self.app_name}"))
        if self.env_tag:
            remove_images([self.env_tag])
        # Without force: a sidecar image that another run is using stays.
        remove_images(sorted(self.sidecar_tags), force=False)


def measure(bench: Bench, repetitions: int) -> dict:
    ours: list[float] = []
    theirs: list[float] = []
    discarded = 0
    for index in range(repetitions):
        turns = ("orch", "docker") if index % 2 == 0 else ("docker", "orch")
        for turn in turns:
            if turn == "docker":
                theirs.append(bench.docker_run())
                continue
            for attempt in range(MAX_ATTEMPTS):
                seconds, built_sidecar = bench.orch_run(f"{index}-{attempt}")
                if not built_sidecar:
                    ours.append(seconds)
                    break
                discarded += 1
                print(f"repetition {index}: orch run built the sidecar image (its sources changed); not counted")
            else:
                raise RuntimeError(f"orch run built the sidecar image in {MAX_ATTEMPTS} attempts in a row")
    return {
        "orch": summarize(ours), "docker": summarize(theirs), "discarded_orch_runs": discarded,
        "samples": {"orch": ours, "docker": theirs},
    }


def report(results: dict) -> None:
    print("\nwarm start to the first 200 from the app's endpoint (image already built)")
    rows = [
        ["orch run --local (sidecar + app containers)", results["orch"].format()],
        ["docker run -d -p 127.0.0.1::8000 (app container only)", results["docker"].format()],
    ]
    print(markdown_table(["command", "wall time, median (min–max)"], rows))
    value = ratio(results["orch"], results["docker"])
    print(f"ratio orch/docker: {value:.2f}; goal (<= 1.3): {'met' if value <= 1.3 else 'missed'}")
    print(f"sidecar images built (untimed) and removed again: {results['sidecar_images_built'] or 'none'}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=7, help="runs per side (default 7)")
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    base = os.environ.get("ORCH_BASE_IMAGE", DEFAULT_BASE_IMAGE)
    run = run_id()
    machine = machine_description()
    print_machine(machine)
    print(f"base image {base}, run {run}, docker CLI {DOCKER}")

    with tempfile.TemporaryDirectory(prefix="orch-bench-run-") as folder:
        env = {
            "ORCH_BASE_IMAGE": base,
            "ORCH_HOME": str(Path(folder) / "orch-home"),
            "ORCH_UV_IMAGE": os.environ.get("ORCH_UV_IMAGE", DEFAULT_UV_IMAGE),
        }
        bench = Bench(Path(folder), run, env)
        try:
            print("preparing: building the app image and one untimed run (builds the sidecar image if missing)")
            bench.build()
            bench.orch_run("warm-up")
            bench.docker_run()
            results = measure(bench, arguments.repetitions)
            results["machine"] = machine
            results["sidecar_images_built"] = sorted(bench.sidecar_tags)
        finally:
            bench.cleanup()
    report(results)
    print(f"\nraw results: {save_results('run_local', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

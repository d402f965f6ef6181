#!/usr/bin/env python3
"""Benchmark requests through the sidecar against requests straight to the app.

Both servers run as host processes on 127.0.0.1, not in containers: the app
runtime (``python -m orchestrator.runtime`` with a one-endpoint app) and the
sidecar (``python -m orchestrator.sidecar`` with ``ORCH_UPSTREAM`` at the app
and a concurrency limit higher than any load here). The load generator is
``wrk`` when it is on PATH (Debian package ``wrk``), else threads with
keep-alive ``http.client`` connections. Client, sidecar and app share the
machine's cores.

Each round measures both targets, in alternating order:
- latency: one connection, requests one after another;
- throughput: several keep-alive connections at once, as fast as they go.
After the last round the sidecar's resident memory (VmRSS in /proc) is read.

Run from the repository root:  .venv/bin/python bench/sidecar_overhead.py
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from support import (
    VENV_PYTHON, Summary, free_port, get_status, machine_description, markdown_table,
    print_machine, save_results, summarize,
)

APP_SOURCE = '''\
import orchestrator


class Echo(orchestrator.App):
    @orchestrator.endpoint("/echo")
    def echo(self, text: str = "") -> dict:
        return {"text": text}
'''

ENDPOINT = "/echo"
BODY = b'{"text": "hello"}'
WRK_SCRIPT = f'''\
wrk.method = "POST"
wrk.body = '{BODY.decode()}'
wrk.headers["Content-Type"] = "application/json"
'''
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0
# Upper bound on requests per connection for the Python client, so that a
# run stays bounded in count as well as in time.
MAX_REQUESTS_PER_CONNECTION = 200_000


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """One load run against one target."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU time (user + system) that each server process used during the run.
    app_cpu_seconds: float = 0.0
    sidecar_cpu_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


class Servers:
    """The app runtime and the sidecar in front of it, as child processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.app_port = free_port()
        self.sidecar_port = free_port()
        token = secrets.token_urlsafe(16)
        (folder / "echo_app.py").write_text(APP_SOURCE)
        self.app = self._start("app", "orchestrator.runtime", {
            "ORCH_APP_FILE": str(folder / "echo_app.py"),
            "ORCH_APP_NAME": "Echo",
            "ORCH_APP_HOST": "127.0.0.1",
            "ORCH_APP_PORT": str(self.app_port),
            "ORCH_CONTROL_TOKEN": token,
        })
        self.sidecar = self._start("sidecar", "orchestrator.sidecar", {
            "ORCH_UPSTREAM": f"http://127.0.0.1:{self.app_port}",
            "ORCH_SIDECAR_HOST": "127.0.0.1",
            "ORCH_SIDECAR_PORT": str(self.sidecar_port),
            "ORCH_MAX_CONCURRENCY": "1024",
            "ORCH_MAX_QUEUE": "1024",
            "ORCH_CONTROL_TOKEN": token,
        })

    def _start(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        return subprocess.Popen(
            [str(VENV_PYTHON), "-m", module], env={**os.environ, **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for process in (self.app, self.sidecar):
                if process.poll() is not None:
                    raise RuntimeError(f"a server exited with {process.returncode}; see {self.folder}")
            if get_status(self.app_port, "/health") == 200 and get_status(self.sidecar_port, "/health") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"the servers were not ready within {READY_TIMEOUT_SECONDS:g}s")

    def cpu_seconds(self) -> tuple[float, float]:
        """Return the CPU seconds (user + system) used so far by the app and by the sidecar."""
        return _cpu_seconds(self.app.pid), _cpu_seconds(self.sidecar.pid)

    def sidecar_memory_kib(self) -> dict[str, int]:
        """Return VmRSS and VmHWM (peak RSS) of the sidecar process, in KiB."""
        values = {}
        for line in Path(f"/proc/{self.sidecar.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def stop(self) -> None:
        # SIGINT stops the sidecar gracefully, and the sidecar stops the app
        # with its control call. The app gets SIGTERM if it is still running.
        for process, stop_signal in ((self.sidecar, signal.SIGINT), (self.app, signal.SIGTERM)):
            if process.poll() is None:
                process.send_signal(stop_signal)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"warning: process {process.pid} did not stop; killing it")
                process.kill()
                process.wait(10)


def _cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat, counted after the command name,
    # which may contain spaces but ends with the last ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WrkClient:
    """Load from ``wrk``: one thread, N keep-alive connections, fixed duration."""

    name = "wrk"

    def __init__(self, folder: Path) -> None:
        self.script = folder / "post.lua"
        self.script.write_text(WRK_SCRIPT)

    def load(self, port: int, connections: int, seconds: float) -> LoadResult:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(self.script),
             f"http://127.0.0.1:{port}{ENDPOINT}"],
            capture_output=True, text=True, check=True, timeout=seconds + 30,
        ).stdout
        return parse_wrk(output)


def parse_wrk(output: str) -> LoadResult:
    percentiles = {
        match.group(1): _milliseconds(match.group(2), match.group(3))
        for match in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    }
    totals = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", output)
    if totals is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    errors = sum(int(value) for value in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    seconds = _milliseconds(totals.group(2), totals.group(3)) / 1000
    return LoadResult(int(totals.group(1)), seconds, percentiles["50"], percentiles["99"], errors)


def _milliseconds(value: str, unit: str) -> float:
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]
    return float(value) * scale


class PythonClient:
    """Load from threads, each with one keep-alive ``http.client`` connection."""

    name = "python threads + http.client"

    def load(self, port: int, connections: int, seconds: float) -> LoadResult:
        latencies: list[list[float]] = [[] for _ in range(connections)]
        errors = [0] * connections
        deadline = time.perf_counter() + seconds
        threads = [
            threading.Thread(target=self._connection, args=(port, deadline, latencies[i], errors, i))
            for i in range(connections)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 30)
        elapsed = time.perf_counter() - started
        merged = sorted(value for per_thread in latencies for value in per_thread)
        if not merged:
            raise RuntimeError(f"no request succeeded against 127.0.0.1:{port}")
        return LoadResult(len(merged), elapsed, _percentile(merged, 0.50), _percentile(merged, 0.99), sum(errors))

    @staticmethod
    def _connection(port: int, deadline: float, latencies: list[float], errors: list[int], index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        try:
            while len(latencies) < MAX_REQUESTS_PER_CONNECTION and time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    connection.request("POST", ENDPOINT, body=BODY, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    errors[index] += 1
                    connection.close()
                    continue
                if response.status == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[index] += 1
        finally:
            connection.close()


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(servers: Servers, client, rounds: int, latency_seconds: float,
            load_seconds: float, connection_counts: list[int]) -> dict:
    targets = {"direct": servers.app_port, "sidecar": servers.sidecar_port}
    runs: dict[str, list[LoadResult]] = {}
    def load(target: str, connections: int, seconds: float) -> None:
        app_before, sidecar_before = servers.cpu_seconds()
        result = client.load(targets[target], connections, seconds)
        app_after, sidecar_after = servers.cpu_seconds()
        result = dataclasses.replace(
            result, app_cpu_seconds=app_after - app_before, sidecar_cpu_seconds=sidecar_after - sidecar_before,
        )
        runs.setdefault(f"{target} c={connections}", []).append(result)

    for round_index in range(rounds):
        order = ("direct", "sidecar") if round_index % 2 == 0 else ("sidecar", "direct")
        for target in order:
            load(target, 1, latency_seconds)
            for count in connection_counts:
                load(target, count, load_seconds)
    return runs


def report(runs: dict[str, list[LoadResult]], connection_counts: list[int], memory: dict) -> dict:
    print("\nper load: median over rounds (min–max)")
    rows = []
    for key, results in runs.items():
        rows.append([
            key,
            summarize([r.p50_ms for r in results]).format("ms", 3),
            summarize([r.p99_ms for r in results]).format("ms", 3),
            summarize([r.throughput for r in results]).format("req/s", 0),
            _cpu_per_request(results, "app_cpu_seconds"),
            _cpu_per_request(results, "sidecar_cpu_seconds") if key.startswith("sidecar") else "-",
            sum(r.errors for r in results),
        ])
    headers = ["target, connections", "p50", "p99", "throughput", "app CPU/request", "sidecar CPU/request", "errors"]
    print(markdown_table(headers, rows))

    def median(key: str, field: str) -> Summary:
        values = [getattr(r, field) for r in runs[key]]
        return summarize(values)

    p50_added = median("sidecar c=1", "p50_ms").median - median("direct c=1", "p50_ms").median
    p99_added = median("sidecar c=1", "p99_ms").median - median("direct c=1", "p99_ms").median
    # The one-connection latency run counts too: the app alone is often
    # fastest there, with no other connection's thread competing for the GIL.
    peak = {
        target: max(median(f"{target} c={count}", "throughput").median for count in (1, *connection_counts))
        for target in ("direct", "sidecar")
    }
    throughput_ratio = peak["sidecar"] / peak["direct"]
    rss_mib = memory["after"]["VmRSS"] / 1024
    print(f"\nlatency added by the sidecar at one connection: p50 {p50_added:+.3f} ms, p99 {p99_added:+.3f} ms; "
          f"goal (p50 <= +0.5 ms): {'met' if p50_added <= 0.5 else 'missed'}")
    print(f"peak throughput: direct {peak['direct']:.0f} req/s, sidecar {peak['sidecar']:.0f} req/s, "
          f"ratio {throughput_ratio:.2f}; goal (>= 0.9): {'met' if throughput_ratio >= 0.9 else 'missed'}")
    print(f"sidecar memory: VmRSS {memory['idle']['VmRSS'] / 1024:.1f} MiB idle, {rss_mib:.1f} MiB after the load, "
          f"peak VmHWM {memory['after']['VmHWM'] / 1024:.1f} MiB; goal (<= 30 MiB): "
          f"{'met' if rss_mib <= 30 else 'missed'}")
    return {"p50_added_ms": p50_added, "p99_added_ms": p99_added, "peak_throughput": peak,
            "throughput_ratio": throughput_ratio}


def _cpu_per_request(results: list[LoadResult], field: str) -> str:
    seconds = sum(getattr(r, field) for r in results)
    requests = sum(r.requests for r in results)
    return f"{seconds / requests * 1e6:.0f} µs"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds over both targets (default 5)")
    parser.add_argument("--latency-seconds", type=float, default=5, help="length of each one-connection run (default 5)")
    parser.add_argument("--load-seconds", type=float, default=8, help="length of each throughput run (default 8)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32],
                        help="connection counts of the throughput runs (default 8 32)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk when on PATH, else python)")
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    machine = machine_description()
    print_machine(machine)
    with tempfile.TemporaryDirectory(prefix="orch-bench-sidecar-") as folder:
        use_wrk = arguments.client == "wrk" or (arguments.client == "auto" and shutil.which("wrk"))
        client = WrkClient(Path(folder)) if use_wrk else PythonClient()
        print(f"client: {client.name}; servers: host processes on 127.0.0.1")
        servers = Servers(Path(folder))
        try:
            servers.wait_ready()
            memory = {"idle": servers.sidecar_memory_kib()}
            for port in (servers.app_port, servers.sidecar_port):
                client.load(port, max(arguments.connections), 2)
            runs = measure(servers, client, arguments.rounds, arguments.latency_seconds,
                           arguments.load_seconds, arguments.connections)
            memory["after"] = servers.sidecar_memory_kib()
        finally:
            servers.stop()
    summary = report(runs, arguments.connections, memory)
    results = {"machine": machine, "client": client.name, "runs": runs, "memory_kib": memory, **summary}
    print(f"\nraw results: {save_results('sidecar_overhead', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

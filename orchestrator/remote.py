"""One run on the runner, seen from the CLI: create, renew the lease, follow, delete.

The CLI renews the run's lease with heartbeats while it lives. When the CLI
dies, the runner deletes the run once the lease expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import RunError
from .runner.client import RunnerClient, RunnerError

logger = logging.getLogger(__name__)

FINAL_STATES = ("completed", "failed")
POLL_SECONDS = 0.5
READY_POLL_SECONDS = 0.1
# How long the CLI keeps polling a runner that cannot be reached (a restart,
# say) before it gives up; the run itself keeps serving meanwhile.
UNREACHABLE_GRACE_SECONDS = 120.0


class RemoteRun:
    """Drives one run through the runner's API."""

    def __init__(self, client: RunnerClient, request: dict[str, Any], *,
                 print_line: Callable[[str], None], print_status: Callable[[str], None]) -> None:
        self.client = client
        self.request = request
        self.print_line = print_line
        self.print_status = print_status
        self.run: dict[str, Any] = {}
        self._stop_heartbeats = threading.Event()

    @property
    def run_id(self) -> str:
        return self.run["id"]

    def start(self) -> None:
        try:
            self.run = self.client.create_run(self.request)
        except RunnerError as error:
            if error.status == 409:
                raise RunError(f"{error.message}. List runs with 'orch runs ls' and stop one with "
                               f"'orch runs stop ID'.") from error
            raise
        logger.info("created run %s", self.run_id)
        threading.Thread(target=self._heartbeats, daemon=True).start()

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Block until the run is ready; a pending run waits for capacity without a time limit."""
        deadline = time.monotonic() + timeout
        shown_message = ""
        while True:
            self.run = self._poll()
            state = self.run["state"]
            if state == "ready":
                return self.run
            if state in FINAL_STATES:
                raise RunError(f"run {self.run_id[:8]} {state} before it was ready: {self.run.get('message', '')}")
            if state == "pending":
                deadline = time.monotonic() + timeout
                if self.run.get("message") and self.run["message"] != shown_message:
                    shown_message = self.run["message"]
                    self.print_status(f"pending: {shown_message}")
            elif time.monotonic() > deadline:
                raise RunError(f"run {self.run_id[:8]} was not ready within {timeout:g}s (state {state})")
            time.sleep(READY_POLL_SECONDS)

    def follow_logs(self) -> None:
        threading.Thread(target=self._follow, daemon=True).start()

    def wait_until_stopped(self) -> dict[str, Any]:
        while self.run["state"] not in FINAL_STATES:
            time.sleep(POLL_SECONDS)
            self.run = self._poll()
        self._stop_heartbeats.set()
        return self.run

    def stop(self, timeout: float = 60) -> dict[str, Any]:
        """Delete the run and wait, bounded, until the runner reports it stopped."""
        self._stop_heartbeats.set()
        if not self.run:
            return {}
        try:
            self.client.delete_run(self.run_id)
        except RunnerError as error:
            logger.warning("deleting run %s failed: %s", self.run_id, error.message)
            return self.run
        deadline = time.monotonic() + timeout
        while self.run["state"] not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            self.run = self._poll()
        return self.run

    def _poll(self) -> dict[str, Any]:
        """Fetch the run, waiting out a runner that is briefly unreachable."""
        deadline = time.monotonic() + UNREACHABLE_GRACE_SECONDS
        delay = POLL_SECONDS
        while True:
            try:
                return self.client.get_run(self.run_id)
            except RunnerError as error:
                if error.status is not None or time.monotonic() > deadline:
                    raise
                logger.warning("runner unreachable (%s); retrying in %.1fs", error.message, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _heartbeats(self) -> None:
        interval = max(float(self.run.get("lease_seconds", 30)) / 3, 0.5)
        while not self._stop_heartbeats.wait(interval):
            try:
                self.client.heartbeat(self.run_id)
            except RunnerError as error:
                logger.warning("heartbeat for run %s failed: %s", self.run_id, error.message)

    def _follow(self) -> None:
        buffer = b""
        try:
            for chunk in self.client.follow_logs(self.run_id):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self.print_line(line.decode(errors="replace"))
        except (RunnerError, OSError) as error:
            logger.debug("log stream of run %s ended: %s", self.run_id, error)

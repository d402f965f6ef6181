"""One local run: start the sidecar and the app, wait for ready, serve, stop.

Lifetime: the CLI renews a lease at the sidecar while it lives. When the CLI
is gone (even by ``kill -9``) the lease expires. The sidecar then drains,
stops the app through its control call (so teardown runs) and exits. Both containers are started
with auto-remove, so nothing is left behind.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from ..engine import ContainerEngine, Engine, GpuUnavailable
from ..errors import OrchestratorError, RunError
from .gpus import gpu_message
from .run_keys import RunKeys
from .spec import RunSpec, app_container, sidecar_container

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 30
SUMMARY_PREFIX = "summary "
# How long the sidecar may outlive an app that it stopped, before the app's
# exit counts as a crash: the sidecar closes its listener and logs a summary.
APP_EXIT_GRACE_SECONDS = 10.0
# Often enough that the banner follows the app's readiness closely; each poll
# is one health check through the sidecar to the app.
READY_POLL_SECONDS = 0.02
# How often the local key store is checked for keys created or revoked
# during a run.
KEYS_REFRESH_SECONDS = 1.0


@dataclasses.dataclass
class Summary:
    """Counts from the summary line the sidecar logs when it stops."""

    served: int = 0
    rejected: int = 0
    duration_seconds: float = 0.0
    reason: str = ""


class ContainerWatch:
    """Follows one container: collects its log lines and its exit code."""

    def __init__(self, containers: ContainerEngine, container_id: str,
                 on_line: Callable[[str], None] | None = None) -> None:
        self.containers = containers
        self.container_id = container_id
        self.on_line = on_line
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.exited = threading.Event()
        self.logs_done = threading.Event()
        self.exit_code: int | None = None

    def start_waiting(self) -> None:
        """Start waiting for removal before the container starts, so no exit is missed."""
        threading.Thread(target=self._wait, daemon=True).start()

    def start_logs(self) -> None:
        threading.Thread(target=self._follow_logs, daemon=True).start()

    def _wait(self) -> None:
        self.exit_code = self.containers.wait(self.container_id, condition="removed")
        self.exited.set()

    def _follow_logs(self) -> None:
        buffer = b""
        try:
            for chunk in self.containers.logs(self.container_id):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._line(line.decode(errors="replace"))
            if buffer:
                self._line(buffer.decode(errors="replace"))
        except Exception:  # noqa: BLE001 - a lost log stream must not end the run
            logger.exception("log stream of container %s ended with an error", self.container_id[:12])
        finally:
            self.logs_done.set()

    def _line(self, line: str) -> None:
        self.tail.append(line)
        if self.on_line is not None:
            self.on_line(line)


class LocalRun:
    """Starts, watches and stops the containers of one run."""

    def __init__(self, engine: Engine, spec: RunSpec, keys: RunKeys | None, *,
                 print_app_line: Callable[[str], None]) -> None:
        self.containers = ContainerEngine(engine)
        self.spec = spec
        self.keys = keys
        self.print_app_line = print_app_line
        self.sidecar: ContainerWatch | None = None
        self.app: ContainerWatch | None = None
        self.port: int | None = None
        self.summary: Summary | None = None
        self._stop_lease = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Start

    def start(self) -> None:
        logger.info("starting run %s of %s", self.spec.run_id, self.spec.app_name)
        spec = self.spec
        sidecar_id = self.containers.create(spec.container_name("sidecar"), sidecar_container(spec))
        self.sidecar = ContainerWatch(self.containers, sidecar_id, self._sidecar_line)
        # Both are created before either starts, so that the app starts right
        # after the sidecar, whose network namespace it joins.
        app_id = self.containers.create(spec.container_name("app"), app_container(spec, sidecar_id))
        self.app = ContainerWatch(self.containers, app_id, self.print_app_line)
        logger.debug("created containers %s (sidecar) and %s (app)", sidecar_id[:12], app_id[:12])

        self.sidecar.start_waiting()
        self.containers.start(sidecar_id)
        logger.debug("started sidecar container %s", sidecar_id[:12])
        self.sidecar.start_logs()
        self.port = self.containers.published_port(sidecar_id, "8080/tcp")
        threading.Thread(target=self._renew_lease, daemon=True).start()
        if self.keys is not None:
            threading.Thread(target=self._refresh_keys, daemon=True).start()

        try:
            self.app.start_waiting()
            self.containers.start(app_id)
            logger.debug("started app container %s", app_id[:12])
        except GpuUnavailable as error:
            self.containers.remove(app_id)
            raise RunError(gpu_message(self.spec.machine, error.message)) from error
        self.app.start_logs()

    def wait_ready(self, timeout: float) -> None:
        """Block until the app reports ready through the sidecar."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.app.exited.is_set():
                self.app.logs_done.wait(5)
                raise RunError(
                    f"the app {self.spec.app_name} stopped before it was ready (exit code "
                    f"{self.app.exit_code}). Last log lines:\n{self.app_log_tail()}"
                )
            if self._health() == 200:
                logger.info("run %s is ready at %s", self.spec.run_id, self.url)
                return
            time.sleep(READY_POLL_SECONDS)
        raise RunError(
            f"the app {self.spec.app_name} was not ready within its startup_timeout of "
            f"{timeout:g}s. Raise startup_timeout or make setup() faster. Last log lines:\n"
            f"{self.app_log_tail()}"
        )

    # Serve and stop

    def wait_until_stopped(self) -> Summary:
        """Block until the sidecar stops (limit reached, or stopped) and both containers are gone."""
        while not self.sidecar.exited.wait(0.2):
            # A stop that the sidecar starts (limit reached, lease expired) ends
            # the app first, so an app exit is a crash only if the sidecar
            # keeps running afterwards.
            if self.app.exited.is_set() and not self.sidecar.exited.wait(APP_EXIT_GRACE_SECONDS):
                self.stop("the app exited")
                raise RunError(
                    f"the app {self.spec.app_name} exited unexpectedly (exit code "
                    f"{self.app.exit_code}). Last log lines:\n{self.app_log_tail()}"
                )
        self._stop_lease.set()
        self.app.exited.wait(self.spec.drain_seconds + 15)
        self.app.logs_done.wait(5)
        self.cleanup()
        return self.summary or Summary(reason="sidecar stopped")

    def stop(self, reason: str) -> Summary:
        """Stop gracefully: the sidecar drains and stops the app; force after a bound."""
        logger.info("stopping run %s: %s", self.spec.run_id, reason)
        self._stop_lease.set()
        if self.sidecar is not None and not self.sidecar.exited.is_set():
            self._control("POST", "/_orch/stop")
            self.sidecar.exited.wait(self.spec.drain_seconds + 10)
        if self.app is not None:
            self.app.exited.wait(15)
            self.app.logs_done.wait(5)
        self._stop_lease.set()
        self.cleanup()
        return self.summary or Summary(reason=reason)

    def cleanup(self) -> None:
        """Remove whatever is still there; safe to call more than once."""
        self._stop_lease.set()
        for watch in (self.app, self.sidecar):
            if watch is not None and not watch.exited.is_set():
                logger.info("removing container %s by force", watch.container_id[:12])
                self.containers.remove(watch.container_id)
        if self.keys is not None:
            self.keys.remove()

    def app_log_tail(self) -> str:
        return "\n".join(self.app.tail) if self.app and self.app.tail else "(no output)"

    # Sidecar communication

    def _sidecar_line(self, line: str) -> None:
        if SUMMARY_PREFIX in line:
            fields = parse_summary(line)
            if fields is not None:
                known = ("served", "rejected", "duration_seconds", "reason")
                self.summary = Summary(**{key: fields[key] for key in known if key in fields})
        elif " ERROR " in line or " WARNING " in line:
            logger.warning("sidecar: %s", line)
        else:
            logger.debug("sidecar: %s", line)

    def _renew_lease(self) -> None:
        interval = max(self.spec.lease_seconds / 3, 0.5)
        while not self._stop_lease.wait(interval):
            if self._control("POST", "/_orch/lease") is None:
                logger.warning("could not renew the lease of run %s", self.spec.run_id)

    def _refresh_keys(self) -> None:
        while not self._stop_lease.wait(KEYS_REFRESH_SECONDS):
            try:
                self.keys.refresh()
            except (OrchestratorError, OSError) as error:
                logger.warning("could not update the keys of run %s: %s", self.spec.run_id, error)

    def _control(self, method: str, path: str) -> int | None:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"X-Orch-Control-Token": self.spec.control_token},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError as error:
            logger.debug("control call %s %s failed: %s", method, path, error)
            return None

    def _health(self) -> int | None:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None


def parse_summary(line: str) -> dict | None:
    """Return the JSON fields of the sidecar's final ``summary {...}`` log line, or None."""
    marker = line.find(SUMMARY_PREFIX)
    if marker < 0:
        return None
    try:
        fields = json.loads(line[marker + len(SUMMARY_PREFIX):])
    except json.JSONDecodeError:
        return None
    return fields if isinstance(fields, dict) else None

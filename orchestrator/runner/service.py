"""The runner's logic, without HTTP: create, watch, stop and adopt runs, and manage keys.

A run moves through these states (see ``RunState``)::

    pending --> starting --> ready --> stopping --> completed

A starting or ready run fails when the backend cannot start it, its app
exits or startup_timeout passes. A live run fails when its containers are
gone at a restart. A pending run that is deleted or whose lease expires
completes at once, because it has no containers to stop.

The API threads create runs and request stops. A placement thread per run
calls ``Backend.start``, so that the API responds before the image is pulled.
The monitor thread does everything else once every ``monitor_seconds``: it
retries placement, checks readiness, polls counters, enforces leases and
startup timeouts, and removes the containers of runs that ended.

Every state change goes through ``_transition``, which rereads the run under
the service's lock and applies the change only if the run is still in one of
the expected states. So two threads that race (a delete and the monitor) never
overwrite each other's result. Backend and HTTP calls happen outside the lock.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .. import keys
from ..errors import OrchestratorError
from ..machines import MachineType
from .backends.base import Backend, NoCapacity, Observation
from .config import RunnerConfig
from .models import Run, RunState
from .store import DuplicateLiveRun, Store, StoredKey

logger = logging.getLogger(__name__)

# A just-placed run is polled this often, for this long, before the monitor takes over.
FAST_READY_POLL_SECONDS = 0.05
FAST_READY_SECONDS = 5.0

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
NAME_RULE = (
    "lowercase letters, digits and '-', starting with a letter or digit, at most 63 characters"
)
# First path segments that the runner serves itself, so no team may take them.
RESERVED_TEAMS = ("v1", "healthz", "docs", "openapi.json")
IMAGE_PATTERN = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")
AUTH_MODES = ("public", "private", "shared")
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_ENV = "main"
MAX_KEY_NAME_LENGTH = 200

# The sidecar's /health checks the app with its own timeout of 5 s.
HEALTH_TIMEOUT_SECONDS = 6.0
CONTROL_TIMEOUT_SECONDS = 5.0
# How long stopping the runner waits for Backend.start calls in flight. A run
# still being placed after that is failed by reconcile() at the next start.
PLACEMENT_WAIT_SECONDS = 30.0
# How long a stopping run may take before its containers are removed by
# force: the sidecar's default drain (30 s), the app's teardown (up to 10 s)
# and the sidecar's final writes (5 s), with margin.
STOP_GRACE_SECONDS = 90.0

# The sidecar's stop reasons (its summary's "reason") as the runner reports them.
_SIDECAR_STOP_REASONS = {
    "limit reached": "limit reached",
    "lease expired": "lease expired",
    "stop requested": "deleted",
    "signal": "signal",
}

_LIVE_STATES = frozenset(state for state in RunState if not state.is_final)


class InvalidRequest(OrchestratorError):
    """A request with a missing, malformed or out-of-range value."""


class NotFound(OrchestratorError):
    """No run or key has the requested id."""


class Conflict(OrchestratorError):
    """The request contradicts the current state, e.g. a second live run of one app."""


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """A validated request to create a run, as ``POST /v1/runs`` takes it."""

    team: str
    app_name: str
    image: str
    machine_types: list[str]
    env: str = DEFAULT_ENV
    auth: str = "public"
    limit_max_requests: int = 0
    max_concurrency: int = 1
    max_queue: int = 100
    request_timeout: float = 60.0
    startup_timeout: float = 300.0
    lease_seconds: float = 30.0
    endpoints: list[str] = dataclasses.field(default_factory=list)
    app_env: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RunRequest:
        """Validate a JSON object; raise InvalidRequest naming the first bad field."""
        known = {field.name for field in dataclasses.fields(cls)} - {"machine_types"}
        known.add("machine_type")
        unknown = sorted(set(document) - known)
        if unknown:
            raise InvalidRequest(
                f"unknown field {unknown[0]!r}; expected some of: {', '.join(sorted(known))}"
            )

        return cls(
            team=check_team(_required(document, "team")),
            app_name=check_name(_required(document, "app_name"), "app_name"),
            image=_image(_required(document, "image")),
            machine_types=_machine_type_names(_required(document, "machine_type")),
            env=check_name(_optional(document, "env", DEFAULT_ENV), "env"),
            auth=_auth(_optional(document, "auth", "public")),
            limit_max_requests=_integer(document, "limit_max_requests", 0, minimum=0),
            max_concurrency=_integer(document, "max_concurrency", 1, minimum=1),
            max_queue=_integer(document, "max_queue", 100, minimum=0),
            request_timeout=_seconds(document, "request_timeout", 60.0),
            startup_timeout=_seconds(document, "startup_timeout", 300.0),
            lease_seconds=_seconds(document, "lease_seconds", 30.0),
            endpoints=_endpoints(_optional(document, "endpoints", [])),
            app_env=_app_env(_optional(document, "app_env", {})),
        )


class RunnerService:
    """Runs and keys: the state in ``store``, the containers through ``backend``."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        catalogue: Mapping[str, MachineType],
        config: RunnerConfig,
    ) -> None:
        self.store = store
        self.backend = backend
        self.catalogue = dict(catalogue)
        self.config = config
        self._lock = threading.RLock()
        # Runs whose Backend.start call is in flight; the monitor leaves them alone.
        self._placing: set[str] = set()
        self._placement_threads: list[threading.Thread] = []
        # Monotonic deadlines of stopping runs, after which containers are removed by force.
        self._stop_deadlines: dict[str, float] = {}
        # Runs whose GET /_orch/status failed at the last check.
        self._status_failing: set[str] = set()
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # Runs

    def create_run(self, request: RunRequest | Mapping[str, Any]) -> Run:
        """Store a new run and start placing it; raise InvalidRequest or Conflict."""
        if not isinstance(request, RunRequest):
            request = RunRequest.from_json(request)
        machines = self.resolve_machine_types(request.machine_types)
        self._check_no_live_run(request.team, request.app_name)

        machine = self._first_offered(machines)
        now = time.time()
        run = Run(
            id=uuid.uuid4().hex,
            app_name=request.app_name,
            team=request.team,
            env=request.env,
            image=request.image,
            machine_type=(machine or machines[0]).name,
            machine_types=[machine.name for machine in machines],
            auth=request.auth,
            limit_max_requests=request.limit_max_requests,
            max_concurrency=request.max_concurrency,
            max_queue=request.max_queue,
            request_timeout=request.request_timeout,
            startup_timeout=request.startup_timeout,
            endpoints=list(request.endpoints),
            app_env=dict(request.app_env),
            lease_seconds=request.lease_seconds,
            state=RunState.STARTING if machine else RunState.PENDING,
            message="" if machine else _no_capacity_message(machines),
            created_at=now,
            lease_expires_at=now + request.lease_seconds,
            control_token=secrets.token_urlsafe(32),
        )

        with self._lock:
            try:
                self.store.insert_run(run)
            except DuplicateLiveRun:
                self._check_no_live_run(run.team, run.app_name)
                raise
            if machine is not None:
                self._placing.add(run.id)
        logger.info(
            "run %s (%s/%s): created in state %s, image %s, machine types %s",
            run.id, run.team, run.app_name, run.state.value, run.image,
            ", ".join(run.machine_types),
        )
        if machine is None:
            logger.info("run %s: %s", run.id, run.message)
        else:
            self._start_placement(run, machine)
        return run

    def get_run(self, run_id: str) -> Run:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    def list_runs(self, team: str | None = None, live_only: bool = False) -> list[Run]:
        return self.store.list_runs(team=team, live_only=live_only)

    def find_live_run(self, team: str, app_name: str) -> Run | None:
        return self.store.find_live_run(team, app_name)

    def count_live_runs(self) -> int:
        return self.store.count_live_runs()

    def heartbeat(self, run_id: str) -> Run:
        """Extend the run's lease by its ``lease_seconds``; raise NotFound or Conflict."""
        run = self.get_run(run_id)
        if run.state.is_final:
            raise Conflict(f"run {run_id} is {run.state.value}; start a new run")
        renewed = self._transition(
            run_id, _LIVE_STATES, lease_expires_at=time.time() + run.lease_seconds
        )
        if renewed is None:
            raise Conflict(f"run {run_id} ended while its lease was renewed; start a new run")
        return renewed

    def delete_run(self, run_id: str) -> Run:
        """Stop the run gracefully; the monitor removes its containers once the sidecar exits."""
        return self._request_stop(self.get_run(run_id), "deleted")

    def logs(self, run_id: str, follow: bool) -> Iterator[bytes]:
        """Return the app's output through the backend; raise Conflict once containers are gone."""
        run = self.get_run(run_id)
        if run.state is RunState.PENDING or not run.upstream:
            raise Conflict(f"run {run_id} is {run.state.value} and has no containers yet")
        if run.state.is_final:
            raise Conflict(
                f"run {run_id} is {run.state.value} and its containers were removed with its logs"
            )
        return self.backend.logs(run, follow)

    def resolve_machine_types(self, names: Iterable[str]) -> list[MachineType]:
        """Look up each name in the catalogue; raise InvalidRequest listing the available types."""
        machines = []
        for name in names:
            machine = self.catalogue.get(name)
            if machine is None:
                raise InvalidRequest(
                    f"unknown machine type '{name}'; available: {', '.join(self.catalogue)}"
                )
            machines.append(machine)
        return machines

    def machine_types(self) -> list[tuple[MachineType, bool]]:
        """Return the catalogue with whether some node offers each type now."""
        return [(machine, self._offers(machine)) for machine in self.catalogue.values()]

    # Keys

    def create_key(self, team: str, name: str | None = None) -> keys.CreatedKey:
        """Create a key for ``team``; the full key is in the result only."""
        check_team(team)
        if name is not None and (
            not isinstance(name, str) or not name.strip() or len(name) > MAX_KEY_NAME_LENGTH
        ):
            raise InvalidRequest(
                f"invalid key name {name!r}: expected a non-empty string of at most "
                f"{MAX_KEY_NAME_LENGTH} characters"
            )
        created = keys.create_key(team, name)
        self.store.insert_key(created.record)
        self.write_key_file()
        logger.info("created key %s for team %s", created.record.id, team)
        return created

    def get_key(self, key_id: str) -> StoredKey:
        stored = self.store.get_key(key_id)
        if stored is None:
            raise NotFound(f"key {key_id} not found")
        return stored

    def list_keys(self, team: str | None = None) -> list[StoredKey]:
        return self.store.list_keys(team=team)

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key; revoking a revoked key changes nothing."""
        self.get_key(key_id)
        if self.store.revoke_key(key_id, time.time()):
            self.write_key_file()
            logger.info("revoked key %s", key_id)

    def authenticate_key(self, key_id: str, secret: str) -> keys.KeyRecord | None:
        """Return the record of a valid, unrevoked key, else None; compares in constant time."""
        stored = self.store.get_key(key_id)
        records = {} if stored is None or stored.revoked else {key_id: stored.record}
        return keys.verify_key(key_id, secret, records)

    def write_key_file(self) -> None:
        """Write the unrevoked keys of all teams where sidecars read them.

        The file is made readable by all before it replaces the old one,
        because sidecars run as an unprivileged user and reload the file
        whenever it changes.
        """
        target = self.config.keys_file
        staging = target.with_name(f".{target.name}.staging")
        # The lock keeps two writers off the staging file, and the last writer
        # reads the store after every earlier change.
        with self._lock:
            records = [stored.record for stored in self.store.list_keys(include_revoked=False)]
            keys.save_key_file(staging, records)
            try:
                os.chmod(staging, 0o644)
                os.replace(staging, target)
            except OSError as error:
                raise keys.KeyFileError(f"cannot write key file {target}: {error}") from error
        logger.info("wrote %d keys to %s", len(records), target)

    # Monitor

    def start_monitor(self) -> None:
        self._monitor_stop.clear()
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="runner-monitor", daemon=True
        )
        self._monitor.start()
        logger.info("monitor started: checking runs every %g s", self.config.monitor_seconds)

    def stop(self) -> None:
        """Stop the monitor and wait for placements in flight; the runs keep running."""
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=30)
            self._monitor = None
            logger.info("monitor stopped")

        deadline = time.monotonic() + PLACEMENT_WAIT_SECONDS
        with self._lock:
            threads = list(self._placement_threads)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        still_placing = sorted(self._placing)
        if still_placing:
            logger.warning(
                "stopping while %d runs are still being placed: %s",
                len(still_placing), ", ".join(still_placing),
            )

    def _monitor_loop(self) -> None:
        while not self._monitor_stop.wait(self.config.monitor_seconds):
            try:
                self.check_runs()
            except Exception:
                logger.exception("monitor: listing runs failed; retrying next time")

    def check_runs(self) -> None:
        """Check every live run once; an error in one run is logged and skips only that run."""
        for run in self.store.list_runs(live_only=True):
            if self._monitor_stop.is_set():
                return
            try:
                self._check_run(run)
            except Exception:
                logger.exception("run %s: checking it failed; retrying next time", run.id)

    def _check_run(self, run: Run) -> None:
        if run.state is not RunState.STOPPING and time.time() > run.lease_expires_at:
            # Reread, because a heartbeat may have come after the runs were listed.
            current = self.store.get_run(run.id)
            if current is not None and time.time() > current.lease_expires_at:
                logger.info(
                    "run %s: lease expired (no heartbeat for %g s)", run.id, run.lease_seconds
                )
                self._request_stop(current, "lease expired")
                return
        if run.id in self._placing:
            return

        if run.state is RunState.PENDING:
            self._retry_placement(run)
        elif run.state is RunState.STARTING:
            self._check_starting(run)
        elif run.state is RunState.READY:
            self._check_ready(run)
        elif run.state is RunState.STOPPING:
            self._check_stopping(run)

    def _retry_placement(self, run: Run) -> None:
        machines = self.resolve_machine_types(run.machine_types or [run.machine_type])
        machine = self._first_offered(machines)
        if machine is None:
            logger.debug("run %s: still no node offers %s", run.id, ", ".join(run.machine_types))
            return
        with self._lock:
            placed = self._transition(
                run.id, {RunState.PENDING}, state=RunState.STARTING,
                machine_type=machine.name, message="",
            )
            if placed is None:
                return
            self._placing.add(run.id)
        self._start_placement(placed, machine)

    def _check_starting(self, run: Run) -> None:
        if not run.upstream:
            # Only reconcile() leaves such a run, and it fails it; nothing to check.
            return
        if self._app_health(run) == 200:
            self._transition(run.id, {RunState.STARTING}, state=RunState.READY, message="")
            return

        observation = self.backend.observe(run)
        if not observation.sidecar_running:
            self._fail(run, "the sidecar exited before the app was ready", observation)
        elif not observation.app_running:
            self._fail(run, "the app exited before it was ready", observation)
        elif time.time() - run.started_at > run.startup_timeout:
            self._fail(
                run,
                f"the app was not ready within startup_timeout={run.startup_timeout:g} s",
                observation,
            )

    def _check_ready(self, run: Run) -> None:
        observation = self.backend.observe(run)
        if not observation.sidecar_running:
            self._complete(run, observation)
        elif not observation.app_running:
            self._fail(run, "the app exited while serving", observation)
        else:
            self._refresh_counters(run)

    def _check_stopping(self, run: Run) -> None:
        if not run.upstream:
            return
        observation = self.backend.observe(run)
        if not observation.sidecar_running:
            self._complete(run, observation)
            return

        deadline = self._stop_deadlines.setdefault(run.id, time.monotonic() + STOP_GRACE_SECONDS)
        if time.monotonic() > deadline:
            logger.warning(
                "run %s: the sidecar did not stop within %g s; removing its containers by force",
                run.id, STOP_GRACE_SECONDS,
            )
            self._remove_containers(run)
            self._finish(
                run, RunState.COMPLETED,
                message=f"the sidecar did not stop within {STOP_GRACE_SECONDS:g} s; "
                "its containers were removed by force",
            )

    def _refresh_counters(self, run: Run) -> None:
        status = self._sidecar_status(run)
        if status is None:
            return
        served = int(status.get("served", run.served))
        rejected = int(status.get("rejected", run.rejected))
        if (served, rejected) != (run.served, run.rejected):
            self._transition(run.id, {RunState.READY}, served=served, rejected=rejected)

    # Placement

    def _start_placement(self, run: Run, machine: MachineType) -> None:
        thread = threading.Thread(
            target=self._place, args=(run, machine), name=f"place-{run.id[:8]}", daemon=True
        )
        with self._lock:
            self._placement_threads = [
                placing for placing in self._placement_threads if placing.is_alive()
            ]
            self._placement_threads.append(thread)
        thread.start()

    def _place(self, run: Run, machine: MachineType) -> None:
        try:
            self._call_start(run, machine)
        finally:
            with self._lock:
                self._placing.discard(run.id)

    def _call_start(self, run: Run, machine: MachineType) -> None:
        logger.info(
            "run %s: starting on machine type %s with backend %s",
            run.id, machine.name, self.backend.name,
        )
        try:
            placement = self.backend.start(run, machine)
        except NoCapacity as error:
            message = str(error) or _no_capacity_message([machine])
            logger.info("run %s: %s", run.id, message)
            self._transition(run.id, {RunState.STARTING}, state=RunState.PENDING, message=message)
            # A stop requested meanwhile has nothing left to wait for.
            self._finish_if_stopping(run)
            return
        except Exception as error:
            logger.exception("run %s: the backend could not start it", run.id)
            self._remove_containers(run)
            self._transition(
                run.id, _LIVE_STATES, state=RunState.FAILED,
                message=f"could not start the run: {error}",
            )
            return

        logger.info(
            "run %s: placed on node %s, sidecar at %s", run.id, placement.node, placement.upstream
        )
        with self._lock:
            started = self._transition(
                run.id, {RunState.STARTING},
                upstream=placement.upstream, node=placement.node, started_at=time.time(),
            )
            if started is None:
                # Deleted or expired while the backend was starting it.
                self._transition(
                    run.id, {RunState.STOPPING}, upstream=placement.upstream, node=placement.node
                )
        if started is None:
            stopped = self.store.get_run(run.id)
            if stopped is not None and stopped.state is RunState.STOPPING:
                self._remove_containers(stopped)
                self._finish(stopped, RunState.COMPLETED, message="stopped while it was starting")
            return
        self._wait_ready_briefly(started)

    def _wait_ready_briefly(self, run: Run) -> None:
        """Poll a just-placed run's health closely for a few seconds.

        Most apps are ready within a second of starting; waiting for the next
        monitor tick would add up to ``monitor_seconds`` to every deploy. Slower
        apps are left to the monitor.
        """
        deadline = time.monotonic() + FAST_READY_SECONDS
        while time.monotonic() < deadline and not self._monitor_stop.is_set():
            if self._app_health(run) == 200:
                self._transition(run.id, {RunState.STARTING}, state=RunState.READY, message="")
                return
            time.sleep(FAST_READY_POLL_SECONDS)

    def _finish_if_stopping(self, run: Run) -> None:
        current = self.store.get_run(run.id)
        if current is not None and current.state is RunState.STOPPING:
            self._finish(current, RunState.COMPLETED, message="stopped before it was placed")

    def _first_offered(self, machines: list[MachineType]) -> MachineType | None:
        for machine in machines:
            if self._offers(machine):
                return machine
        return None

    def _offers(self, machine: MachineType) -> bool:
        try:
            return bool(self.backend.offers(machine))
        except Exception:
            logger.exception(
                "backend %s: checking capacity for %s failed", self.backend.name, machine.name
            )
            return False

    # Stopping and ending

    def _request_stop(self, run: Run, reason: str) -> Run:
        """Start a graceful stop: ask the sidecar to drain, or end a run without containers."""
        if run.state.is_final or run.state is RunState.STOPPING:
            return run
        if run.state is RunState.PENDING:
            ended = self._transition(
                run.id, {RunState.PENDING}, state=RunState.COMPLETED, stop_reason=reason,
                message="stopped before it was placed",
            )
            return ended or self.get_run(run.id)

        stopping = self._transition(
            run.id, {RunState.STARTING, RunState.READY}, state=RunState.STOPPING, stop_reason=reason
        )
        if stopping is None:
            return self.get_run(run.id)
        self._stop_deadlines[run.id] = time.monotonic() + STOP_GRACE_SECONDS
        if stopping.upstream:
            self._send_stop(stopping)
        return stopping

    def _send_stop(self, run: Run) -> None:
        try:
            status, _ = _sidecar_request(run, "POST", "/_orch/stop", CONTROL_TIMEOUT_SECONDS)
        except (OSError, http.client.HTTPException) as error:
            # The monitor removes the containers once the sidecar is gone or the grace period ends.
            logger.warning("run %s: POST /_orch/stop failed: %s", run.id, error)
            return
        if status != 202:
            logger.warning("run %s: POST /_orch/stop returned %d", run.id, status)
        else:
            logger.info("run %s: asked the sidecar to stop (%s)", run.id, run.stop_reason)

    def _complete(self, run: Run, observation: Observation) -> None:
        """End a run whose sidecar exited: record its summary, then remove its containers."""
        summary = observation.summary
        if summary is None and not run.stop_reason:
            self._fail(run, "the sidecar exited without a summary", observation)
            return

        summary = summary or {}
        stop_reason = _stop_reason(run, summary)
        if stop_reason == "limit reached":
            logger.info("run %s: request limit of %d reached", run.id, run.limit_max_requests)
        self._remove_containers(run)
        self._finish(
            run, RunState.COMPLETED,
            served=int(summary.get("served", run.served)),
            rejected=int(summary.get("rejected", run.rejected)),
            stop_reason=stop_reason,
        )

    def _fail(self, run: Run, reason: str, observation: Observation) -> None:
        tail = observation.app_log_tail.strip()
        message = f"{reason}; last lines of the app's output:\n{tail}" if tail else reason
        logger.warning("run %s: %s", run.id, reason)
        self._remove_containers(run)
        self._finish(run, RunState.FAILED, message=message)

    def _finish(self, run: Run, state: RunState, **changes: Any) -> None:
        self._transition(run.id, _LIVE_STATES, state=state, **changes)
        self._stop_deadlines.pop(run.id, None)
        self._status_failing.discard(run.id)

    def _remove_containers(self, run: Run) -> None:
        try:
            self.backend.remove(run)
        except Exception:
            # reconcile() removes leftover containers of final runs at the next start.
            logger.exception("run %s: removing its containers failed", run.id)

    # Restart

    def reconcile(self) -> None:
        """Match stored runs with the backend's containers after a (re)start.

        Live runs with containers are adopted, with a fresh lease so that the
        CLI has time to renew it. Live runs without containers fail.
        Containers of unknown or final runs are removed.
        """
        existing = self.backend.run_ids()
        logger.info("reconciling: %d runs have containers", len(existing))
        for run in self.store.list_runs(live_only=True):
            self._reconcile_run(run, existing)

        for run_id in sorted(existing):
            stored = self.store.get_run(run_id)
            if stored is not None and not stored.state.is_final:
                continue
            reason = "unknown to the runner" if stored is None else f"already {stored.state.value}"
            logger.info("reconcile: removing the containers of run %s (%s)", run_id, reason)
            self._remove_containers(stored or _bare_run(run_id))

    def _reconcile_run(self, run: Run, existing: set[str]) -> None:
        lease = time.time() + run.lease_seconds
        if run.state is RunState.PENDING:
            logger.info("reconcile: run %s stays pending", run.id)
            self._transition(run.id, {RunState.PENDING}, lease_expires_at=lease)
            return

        if run.id in existing and run.upstream:
            logger.info(
                "reconcile: adopting run %s (%s) at %s", run.id, run.state.value, run.upstream
            )
            adopted = self._transition(run.id, _LIVE_STATES, lease_expires_at=lease)
            if adopted is not None and adopted.state is RunState.STOPPING:
                self._stop_deadlines[run.id] = time.monotonic() + STOP_GRACE_SECONDS
                self._send_stop(adopted)
            return

        if run.id in existing:
            logger.info(
                "reconcile: run %s was being placed when the runner stopped; removing it", run.id
            )
            message = "the runner restarted while the run was being placed"
        else:
            logger.info("reconcile: the containers of run %s are gone; marking it failed", run.id)
            message = "containers were gone when the runner restarted"
        # Without live containers, this still removes what a backend may keep
        # of a run, such as a network.
        self._remove_containers(run)
        self._transition(run.id, _LIVE_STATES, state=RunState.FAILED, message=message)

    # Helpers

    def _check_no_live_run(self, team: str, app_name: str) -> None:
        live = self.store.find_live_run(team, app_name)
        if live is not None:
            raise Conflict(
                f"app {team}/{app_name} already has run {live.id} in state {live.state.value}; "
                f"delete it first with DELETE /v1/runs/{live.id}"
            )

    def _transition(self, run_id: str, expected: Iterable[RunState], **changes: Any) -> Run | None:
        """Apply ``changes`` if the run is in one of the ``expected`` states; return the new run."""
        with self._lock:
            run = self.store.get_run(run_id)
            if run is None or run.state not in set(expected):
                return None
            updated = dataclasses.replace(run, **changes)
            self.store.update_run(updated)
        if updated.state is not run.state:
            detail = updated.stop_reason if updated.state is RunState.COMPLETED else ""
            logger.info(
                "run %s (%s/%s): %s -> %s%s", run_id, run.team, run.app_name,
                run.state.value, updated.state.value, f" ({detail})" if detail else "",
            )
        return updated

    def _app_health(self, run: Run) -> int | None:
        try:
            status, _ = _sidecar_request(run, "GET", "/health", HEALTH_TIMEOUT_SECONDS)
        except (OSError, http.client.HTTPException) as error:
            logger.debug("run %s: GET /health failed: %s", run.id, error)
            return None
        return status

    def _sidecar_status(self, run: Run) -> dict[str, Any] | None:
        try:
            status, body = _sidecar_request(run, "GET", "/_orch/status", CONTROL_TIMEOUT_SECONDS)
            document = json.loads(body) if status == 200 else None
            problem = "" if isinstance(document, dict) else f"returned {status}"
        except (OSError, http.client.HTTPException, ValueError) as error:
            document, problem = None, f"failed: {error}"

        # Logged once when the problem starts and once when it ends, not on every check.
        if problem and run.id not in self._status_failing:
            self._status_failing.add(run.id)
            logger.warning("run %s: GET /_orch/status %s; retrying every check", run.id, problem)
        elif not problem and run.id in self._status_failing:
            self._status_failing.discard(run.id)
            logger.info("run %s: GET /_orch/status works again", run.id)
        return document if not problem else None


def check_team(team: Any) -> str:
    """Return ``team`` if it is a valid team name; raise InvalidRequest naming the rule."""
    check_name(team, "team")
    if team in RESERVED_TEAMS:
        raise InvalidRequest(
            f"invalid team {team!r}: it is reserved for the runner's own paths "
            f"({', '.join(RESERVED_TEAMS)})"
        )
    return team


def check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(f"invalid {field} {value!r}: expected {NAME_RULE}")
    return value


def _required(document: Mapping[str, Any], field: str) -> Any:
    if document.get(field) is None:
        raise InvalidRequest(f"missing field {field!r}")
    return document[field]


def _optional(document: Mapping[str, Any], field: str, default: Any) -> Any:
    """Return the field's value, or ``default`` when it is missing or null."""
    value = document.get(field)
    return default if value is None else value


def _image(value: Any) -> str:
    if not isinstance(value, str) or not IMAGE_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"invalid image {value!r}: expected a reference pinned by digest, "
            "NAME@sha256:<64 hex digits>; push the image and use the digest the registry returned"
        )
    return value


def _machine_type_names(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name for name in names)
    ):
        raise InvalidRequest(
            f"invalid machine_type {value!r}: expected a name or a non-empty list of names, "
            "in order of preference"
        )
    return names


def _auth(value: Any) -> str:
    if value not in AUTH_MODES:
        raise InvalidRequest(f"invalid auth {value!r}: expected one of {', '.join(AUTH_MODES)}")
    return value


def _integer(document: Mapping[str, Any], field: str, default: int, *, minimum: int) -> int:
    value = _optional(document, field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequest(f"invalid {field} {value!r}: expected an integer >= {minimum}")
    return value


def _seconds(document: Mapping[str, Any], field: str, default: float) -> float:
    value = _optional(document, field, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequest(f"invalid {field} {value!r}: expected a number of seconds > 0")
    return float(value)


def _endpoints(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(path, str) and path.startswith("/") for path in value
    ):
        raise InvalidRequest(
            f"invalid endpoints {value!r}: expected a list of paths starting with '/'"
        )
    return value


def _app_env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"invalid app_env {value!r}: expected an object of strings")
    for name, setting in value.items():
        if not ENV_NAME_PATTERN.fullmatch(name) or not isinstance(setting, str):
            raise InvalidRequest(
                f"invalid app_env entry {name!r}: expected a variable name "
                "(letters, digits, '_') with a string value"
            )
        if name.startswith("ORCH_"):
            raise InvalidRequest(
                f"invalid app_env entry {name!r}: names starting with ORCH_ are set by the runner"
            )
    return value


def _no_capacity_message(machines: list[MachineType]) -> str:
    names = ", ".join(machine.name for machine in machines)
    noun = "machine type" if len(machines) == 1 else "any of the machine types"
    return f"no node offers {noun} {names}; waiting for capacity"


def _stop_reason(run: Run, summary: Mapping[str, Any]) -> str:
    reason = summary.get("reason")
    # The limit can end a run before a stop requested by the runner takes effect.
    if reason == "limit reached":
        return "limit reached"
    if run.stop_reason:
        return run.stop_reason
    return _SIDECAR_STOP_REASONS.get(reason, reason or "sidecar exited")


def _bare_run(run_id: str) -> Run:
    """Return a run that carries only its id, to remove containers that the store does not know."""
    return Run(id=run_id, app_name="", team="", env="", image="", machine_type="")


def _sidecar_request(run: Run, method: str, path: str, timeout: float) -> tuple[int, bytes]:
    """Send a request to the run's sidecar with its control token; return status and body."""
    url = urllib.parse.urlsplit(run.upstream)
    connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)
    headers = {"X-Orch-Control-Token": run.control_token, "Content-Length": "0"}
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


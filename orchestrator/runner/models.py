"""A run as the runner stores and reports it."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class RunState(str, enum.Enum):
    """Stage of a run's life.

    - pending: no node offers the machine type yet.
    - starting: the containers are being created, or the app runs setup().
    - ready: serving.
    - stopping: draining after a delete, a lease expiry or the request limit.
    - completed: stopped after the limit, a delete or a lease expiry.
    - failed: could not start, or crashed.
    """

    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (RunState.COMPLETED, RunState.FAILED)


@dataclasses.dataclass
class Run:
    """One app served by the runner, with what it asked for and what happened."""

    id: str
    app_name: str
    team: str
    env: str
    image: str
    # The machine type the run was placed on; while pending, the first choice.
    machine_type: str
    auth: str = "public"
    limit_max_requests: int = 0
    max_concurrency: int = 1
    max_queue: int = 100
    request_timeout: float = 60.0
    startup_timeout: float = 300.0
    endpoints: list[str] = dataclasses.field(default_factory=list)
    app_env: dict[str, str] = dataclasses.field(default_factory=dict)
    lease_seconds: float = 30.0
    state: RunState = RunState.STARTING
    message: str = ""
    created_at: float = 0.0
    lease_expires_at: float = 0.0
    control_token: str = dataclasses.field(default="", repr=False)
    upstream: str = ""
    node: str = ""
    served: int = 0
    rejected: int = 0
    stop_reason: str = ""
    # The requested machine types in order of preference; placement takes the
    # first one that a node offers.
    machine_types: list[str] = dataclasses.field(default_factory=list)
    # Unix time when the backend placed the run; startup_timeout counts from here.
    started_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """Return the run as the API shows it: everything but the control token."""
        document = dataclasses.asdict(self)
        document.pop("control_token")
        document["state"] = self.state.value
        return document

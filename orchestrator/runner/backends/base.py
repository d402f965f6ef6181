"""The interface between the runner and whatever places containers.

A backend must not assume one host: a run may land on another node, and on
Docker Swarm two services share no network namespace. So the runner reaches
a run only through ``Placement.upstream``, an HTTP address of its sidecar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

from ...machines import MachineType
from ..models import Run


@dataclasses.dataclass(frozen=True)
class Placement:
    """Location of a started run: its sidecar's address and its node."""

    upstream: str
    node: str


@dataclasses.dataclass(frozen=True)
class Observation:
    """State of a run's containers as the backend observed it."""

    sidecar_running: bool
    app_running: bool
    summary: dict | None = None
    app_log_tail: str = ""


class NoCapacity(Exception):
    """No node offers the machine type; the run stays pending."""


class Backend(Protocol):
    name: str

    def offers(self, machine: MachineType) -> bool:
        """Return whether some node can run this machine type now."""

    def start(self, run: Run, machine: MachineType) -> Placement:
        """Create and start the run's sidecar and app; raise NoCapacity if none fits."""

    def observe(self, run: Run) -> Observation:
        """Report whether the run's containers still run, and the sidecar's summary."""

    def logs(self, run: Run, follow: bool) -> Iterator[bytes]:
        """Yield the app's output; with ``follow``, until the app stops."""

    def remove(self, run: Run) -> None:
        """Remove the run's containers by force (after a graceful stop or to clean up)."""

    def run_ids(self) -> set[str]:
        """Return the ids of runs whose containers exist, for reconciliation."""

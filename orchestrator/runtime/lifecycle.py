"""The serving state, the count of in-flight requests and the request to stop."""

from __future__ import annotations

import enum
import threading


class State(enum.Enum):
    """The status that ``GET /health`` reports; only READY returns 200."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class Lifecycle:
    """Thread-safe state shared by the HTTP threads, the setup thread and the main thread."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._state = State.STARTING
        self._error = ""
        self._in_flight = 0
        self._setup_finished = False
        self._stop_requested = threading.Event()
        self.stop_reason = ""
        self.exit_code = 0

    def status(self) -> tuple[State, str]:
        """Return the state and, when setup failed, its error."""
        with self._condition:
            return self._state, self._error

    @property
    def setup_finished(self) -> bool:
        with self._condition:
            return self._setup_finished

    @property
    def in_flight(self) -> int:
        with self._condition:
            return self._in_flight

    def mark_ready(self) -> None:
        """Record that setup returned; a stop requested meanwhile keeps STOPPING."""
        with self._condition:
            self._setup_finished = True
            if self._state is State.STARTING:
                self._state = State.READY

    def mark_failed(self, error: str) -> None:
        with self._condition:
            if self._state is State.STARTING:
                self._state = State.FAILED
                self._error = error

    def begin_request(self) -> bool:
        """Count a new endpoint call; return False, counting nothing, unless READY."""
        with self._condition:
            if self._state is not State.READY:
                return False
            self._in_flight += 1
            return True

    def end_request(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def request_stop(self, reason: str, exit_code: int = 0) -> None:
        """Move to STOPPING and wake the main thread; only the first request counts.

        A stop after setup failed exits with 1 when ``exit_code`` is 0.
        """
        with self._condition:
            if self._stop_requested.is_set():
                return
            if self._state is State.FAILED:
                exit_code = exit_code or 1
            self._state = State.STOPPING
            self.stop_reason = reason
            self.exit_code = exit_code
            self._stop_requested.set()

    def wait_for_stop(self, timeout: float) -> bool:
        """Return True once a stop was requested, or False after ``timeout`` seconds."""
        return self._stop_requested.wait(timeout)

    def drain(self, timeout: float) -> int:
        """Wait at most ``timeout`` seconds for in-flight calls to end; return how many remain."""
        with self._condition:
            self._condition.wait_for(lambda: self._in_flight == 0, timeout)
            return self._in_flight

"""Drive ``orch run`` as a user would: a real process, its output and its signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ORCH = str(Path(sys.executable).with_name("orch"))
READY_LINE = re.compile(r"Docs:\s+(http://127\.0\.0\.1:\d+\S*)/docs")


class OrchProcess:
    """An ``orch`` command running in the background, with its output collected."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [ORCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True).start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
            match = READY_LINE.search(line)
            if match:
                self.url = match.group(1)
                self._ready.set()

    def wait_ready(self, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.2):
                return self.url
            if self.process.poll() is not None:
                time.sleep(0.3)
                raise AssertionError(f"orch exited with {self.process.returncode} before ready:\n{self.output}")
        raise AssertionError(f"orch was not ready within {timeout}s:\n{self.output}")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            time.sleep(0.2)  # let the reader threads take the last lines

    def send(self, signal_number: int) -> None:
        self.process.send_signal(signal_number)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    @property
    def output(self) -> str:
        return "stdout:\n" + "\n".join(self.stdout) + "\nstderr:\n" + "\n".join(self.stderr)

"""Show build progress: live on a terminal, plain lines elsewhere (CI)."""

from __future__ import annotations

import sys
import time
from typing import Protocol



class Progress(Protocol):
    def start(self, title: str) -> None: ...
    def step(self, name: str) -> None: ...
    def log(self, line: str) -> None: ...
    def finish(self, ok: bool) -> None: ...


class PlainProgress:
    """One line per build step with the time since the build started."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def start(self, title: str) -> None:
        self.started = time.monotonic()
        print(f"[{self._elapsed()}] {title}", file=self.stream, flush=True)

    def step(self, name: str) -> None:
        print(f"[{self._elapsed()}] {name}", file=self.stream, flush=True)

    def log(self, line: str) -> None:
        pass

    def finish(self, ok: bool) -> None:
        state = "done" if ok else "failed"
        print(f"[{self._elapsed()}] build {state}", file=self.stream, flush=True)


class LiveProgress:
    """A live line per step with its elapsed time and the latest log output."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = None
        self.title = ""
        self.steps: list[tuple[str, float]] = []
        self.last_line = ""
        self.started = time.monotonic()

    def start(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        from rich.live import Live

        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def step(self, name: str) -> None:
        self.steps.append((name, time.monotonic()))
        self.last_line = ""
        self._refresh()

    def log(self, line: str) -> None:
        self.last_line = line.strip()[:120]
        self._refresh()

    def finish(self, ok: bool) -> None:
        if self.live is not None:
            self.last_line = "done" if ok else "failed"
            self._refresh()
            self.live.stop()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self):
        from rich.text import Text

        now = time.monotonic()
        text = Text(f"{self.title}  {now - self.started:.1f}s\n", style="bold")
        for index, (name, started) in enumerate(self.steps):
            ended = self.steps[index + 1][1] if index + 1 < len(self.steps) else now
            mark = "✔" if index + 1 < len(self.steps) else "…"
            text.append(f" {mark} {name[:100]}  {ended - started:.1f}s\n")
        if self.last_line:
            text.append(f"   {self.last_line}\n", style="dim")
        return text


def for_terminal() -> Progress:
    return LiveProgress() if sys.stderr.isatty() else PlainProgress()

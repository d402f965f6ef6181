#!/usr/bin/env python3
"""Benchmark ``orch build`` against an equivalent single Dockerfile built with BuildKit.

Three cases, each measured on both sides in the same run, the sides taking
turns going first:

a. nothing changed: ``orch build REF`` (the CLI as a process) against
   ``DOCKER_BUILDKIT=1 docker build`` with a full layer cache. ``orch`` must
   make no build call, which is checked twice: no "Building" progress line,
   and no engine image event naming its images in the timed window.
b. code-only change: the same one-line change to the app file on both sides,
   then each side rebuilds.
c. cold build of a numpy + pillow environment against a plain
   ``pip install`` Dockerfile, after ``docker builder prune -af`` and with the
   images of both sides removed before every run.

Run from the repository root:  .venv/bin/python bench/build_cache.py
Note: ``docker builder prune -af`` in case c empties the BuildKit cache of
the whole engine, not only this benchmark's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from support import (
    DEFAULT_UV_IMAGE,
    DEFAULT_BASE_IMAGE, DOCKER, ORCH, docker, image_label, image_tag_events, images_with_label,
    machine_description, markdown_table, print_machine, ratio, remove_images, run_id,
    save_results, summarize, timed_run,
)

from orchestrator.environment import in_image_sources
from orchestrator.lock import Lock
from orchestrator.refs import default_app_name

APP_SOURCE = '''\
import orchestrator


class {name}(orchestrator.App, machine_type="XS"):
    requirements = {requirements!r}
    env = {{"BENCH_RUN": "{run}"}}

    @orchestrator.endpoint("/echo")
    def echo(self, text: str = "") -> dict:
        return {{"text": text}}
'''

# The steps of images/python/Dockerfile and images/app/Dockerfile as rendered
# for BuildKit, in one file. Left out: the apt-get step (no system packages
# here, so it does nothing) and the Python version check.
EQUIVALENT_DOCKERFILE = '''\
FROM {uv_image} AS uv
FROM {base}
ENV PYTHONUNBUFFERED=1 UV_LINK_MODE=copy
COPY --from=uv /uv /opt/orchestrator/tools/bin/uv
RUN /opt/orchestrator/tools/bin/uv venv --python "$(command -v python3)" /opt/venv
COPY runtime/ /opt/orchestrator/lib/
COPY requirements.lock /opt/orchestrator/requirements.lock
RUN --mount=type=cache,target=/root/.cache/uv /opt/orchestrator/tools/bin/uv pip sync \\
    --python /opt/venv/bin/python --require-hashes --compile-bytecode /opt/orchestrator/requirements.lock \\
    && /opt/venv/bin/python -m compileall -q /opt/orchestrator/lib
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONPATH=/opt/orchestrator/lib BENCH_RUN="{run}"
WORKDIR /app
COPY code/ /app/
ENV ORCH_APP_FILE="/app/app.py" ORCH_APP_NAME="{name}"
CMD ["python", "-m", "orchestrator.runtime"]
'''

PLAIN_PIP_DOCKERFILE = '''\
FROM {base}
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install {packages}
ENV PATH=/opt/venv/bin:$PATH BENCH_RUN="{run}"
WORKDIR /app
COPY code/ /app/
'''

WARM_REQUIREMENTS = ["requests==2.32.3"]
COLD_REQUIREMENTS = ["numpy", "pillow"]


class Side:
    """One app declared for ``orch`` and the baseline build context beside it."""

    def __init__(self, root: Path, name: str, requirements: list[str], run: str, base: str, env: dict[str, str]) -> None:
        self.name = name
        self.run = run
        self.base = base
        self.env = env
        self.requirements = requirements
        self.folder = root / name
        self.context = root / f"{name}-baseline"
        self.folder.mkdir()
        (self.context / "code").mkdir(parents=True)
        self.app_file = self.folder / "app.py"
        self.reference = f"app.py::{name}"
        self.app_name = default_app_name(name)
        self.baseline_repository = f"orch-bench-baseline-{run}-{self.app_name}"
        self.baseline_tags: list[str] = []
        self.env_tags: set[str] = set()
        self.write_code("")

    def write_code(self, change: str) -> None:
        """Write the app file on both sides; ``change`` is appended as a comment line."""
        source = APP_SOURCE.format(name=self.name, requirements=self.requirements, run=self.run)
        if change:
            source += f"# {change}\n"
        self.app_file.write_text(source)
        shutil.copyfile(self.app_file, self.context / "code" / "app.py")

    def orch(self, *args: str) -> tuple[float, str, str]:
        seconds, completed = timed_run([str(ORCH), *args], cwd=self.folder, env=self.env)
        return seconds, completed.stdout, completed.stderr

    def orch_build(self) -> tuple[float, str, str]:
        seconds, stdout, stderr = self.orch("build", self.reference)
        reference = stdout.split()[0]
        self.env_tags.add(f"orchestrator-env:{image_label(reference, 'org.orchestrator.env-key')[:32]}")
        return seconds, stdout, stderr

    def docker_build(self, tag: str) -> tuple[float, str]:
        """Build the baseline; return the wall time and BuildKit's plain progress output."""
        self.baseline_tags.append(tag)
        seconds, completed = timed_run(
            [DOCKER, "build", "--progress=plain", "-t", tag, str(self.context)],
            env={"DOCKER_BUILDKIT": "1"},
        )
        return seconds, completed.stderr

    def last_environment_log(self) -> str:
        """Return the BuildKit output of orch's latest environment build."""
        logs = sorted((Path(self.env["ORCH_HOME"]) / "logs").glob("build-orchestrator-env-*.log"),
                      key=lambda path: path.stat().st_mtime)
        return logs[-1].read_text() if logs else ""

    def lock_content(self) -> str:
        return (self.folder / f"app.{self.name}.lock").read_text()

    def remove_images(self) -> None:
        remove_images(images_with_label(f"org.orchestrator.app={self.app_name}"))
        remove_images(sorted(self.env_tags))
        remove_images(self.baseline_tags)


def lay_out_equivalent(side: Side) -> None:
    """Write the single Dockerfile that does what the two product templates do."""
    (side.context / "requirements.lock").write_text(side.lock_content())
    for image_path, source in in_image_sources():
        target = side.context / "runtime" / image_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    uv_image = os.environ.get("ORCH_UV_IMAGE", DEFAULT_UV_IMAGE)
    dockerfile = EQUIVALENT_DOCKERFILE.format(uv_image=uv_image, base=side.base, run=side.run, name=side.name)
    (side.context / "Dockerfile").write_text(dockerfile)


def lay_out_plain_pip(side: Side) -> list[str]:
    """Write the plain ``pip install`` Dockerfile, pinned to the versions in orch's lock."""
    pins = Lock(Path("lock"), side.lock_content()).pins()
    packages = [f"{name}=={pins[name]}" for name in side.requirements]
    dockerfile = PLAIN_PIP_DOCKERFILE.format(base=side.base, packages=" ".join(packages), run=side.run)
    (side.context / "Dockerfile").write_text(dockerfile)
    return packages


def our_events(side: Side, since: float, until: float) -> list[dict[str, str]]:
    prefixes = (f"orchestrator-app/{side.app_name}", *side.env_tags)
    return [event for event in image_tag_events(since, until) if event["name"].startswith(prefixes)]


def measure_unchanged(side: Side, repetitions: int) -> dict:
    ours: list[float] = []
    theirs: list[float] = []
    startup: list[float] = []
    building_lines = 0
    events: list[dict[str, str]] = []
    baseline_events: list[dict[str, str]] = []
    tag = f"{side.baseline_repository}:unchanged"
    for index in range(repetitions):
        for turn in _turns(index):
            if turn == "orch":
                since = time.time()
                seconds, stdout, stderr = side.orch_build()
                until = time.time()
                if "(cached)" not in stdout:
                    raise RuntimeError(f"orch build rebuilt an unchanged app:\n{stdout}\n{stderr}")
                building_lines += len(progress_titles(stderr))
                events += our_events(side, since, until)
                ours.append(seconds)
            else:
                since = time.time()
                theirs.append(side.docker_build(tag)[0])
                until = time.time()
                baseline_events += [e for e in image_tag_events(since, until) if e["name"].startswith(tag)]
        startup.append(side.orch("--version")[0])
    return {
        "orch": summarize(ours), "docker": summarize(theirs), "orch_version": summarize(startup),
        "orch_building_lines": building_lines, "orch_image_events": events,
        "docker_image_events": baseline_events, "samples": {"orch": ours, "docker": theirs},
    }


def measure_code_change(side: Side, repetitions: int) -> dict:
    ours: list[float] = []
    theirs: list[float] = []
    building: list[str] = []
    for index in range(repetitions):
        side.write_code(f"code change {index}")
        for turn in _turns(index):
            if turn == "orch":
                seconds, stdout, stderr = side.orch_build()
                if "(built)" not in stdout:
                    raise RuntimeError(f"orch build did not rebuild after a code change:\n{stdout}\n{stderr}")
                building += progress_titles(stderr)
                ours.append(seconds)
            else:
                theirs.append(side.docker_build(f"{side.baseline_repository}:change-{index}")[0])
    return {
        "orch": summarize(ours), "docker": summarize(theirs), "orch_building_lines": building,
        "samples": {"orch": ours, "docker": theirs},
    }


def progress_titles(stderr: str) -> list[str]:
    """Return the "Building ..." titles of orch's plain progress lines ("[   0.0s] Building ...")."""
    titles = []
    for line in stderr.splitlines():
        _, _, text = line.partition("] ")
        if text.startswith("Building "):
            titles.append(text)
    return titles


def measure_cold(side: Side, repetitions: int) -> dict:
    ours: list[float] = []
    theirs: list[float] = []
    steps: dict[str, list[list[tuple[str, str]]]] = {"orch": [], "docker": []}
    for index in range(repetitions):
        for turn in _turns(index):
            clear_caches(side)
            if turn == "orch":
                ours.append(side.orch_build()[0])
                steps["orch"].append(buildkit_steps(side.last_environment_log()))
            else:
                seconds, output = side.docker_build(f"{side.baseline_repository}:cold-{index}")
                theirs.append(seconds)
                steps["docker"].append(buildkit_steps(output))
    clear_caches(side)
    return {
        "orch": summarize(ours), "docker": summarize(theirs), "steps": steps,
        "samples": {"orch": ours, "docker": theirs},
    }


def buildkit_steps(output: str) -> list[tuple[str, str]]:
    """Return (step title, "DONE 1.2s" or "CACHED") for each Dockerfile step in BuildKit's plain output."""
    titles: dict[str, str] = {}
    results: dict[str, str] = {}
    for line in output.splitlines():
        header = re.match(r"^#(\d+) (\[(?!internal).+)$", line)
        if header and header.group(1) not in titles:
            titles[header.group(1)] = header.group(2)[:90]
            continue
        outcome = re.match(r"^#(\d+) (DONE [\d.]+s|CACHED)$", line)
        if outcome:
            results[outcome.group(1)] = outcome.group(2)
    return [(titles[number], results.get(number, "?")) for number in titles]


def clear_caches(side: Side) -> None:
    side.remove_images()
    docker("builder", "prune", "-af")


def _turns(index: int) -> tuple[str, str]:
    return ("orch", "docker") if index % 2 == 0 else ("docker", "orch")


def report(results: dict) -> None:
    unchanged = results["unchanged"]
    print("\n(a) nothing changed, to image ready")
    rows = [
        ["orch build (cached)", unchanged["orch"].format(),
         f"{unchanged['orch_building_lines']} Building lines, {len(unchanged['orch_image_events'])} image events"],
        ["DOCKER_BUILDKIT=1 docker build (full layer cache)", unchanged["docker"].format(),
         f"{len(unchanged['docker_image_events'])} image events ({_actions(unchanged['docker_image_events'])})"],
        ["orch --version (CLI start-up only, for reference)", unchanged["orch_version"].format(), ""],
    ]
    print(markdown_table(["command", "wall time, median (min–max)", "build evidence"], rows))
    unchanged_ratio = ratio(unchanged["orch"], unchanged["docker"])
    no_calls = unchanged["orch_building_lines"] == 0 and not unchanged["orch_image_events"]
    print(f"ratio orch/docker: {unchanged_ratio:.2f}; goal (<= 1.0 and no build call): "
          f"{'met' if unchanged_ratio <= 1.0 and no_calls else 'missed'}")

    change = results["code_change"]
    print("\n(b) code-only change, to image ready")
    rows = [
        ["orch build (code layer rebuilt)", change["orch"].format()],
        ["DOCKER_BUILDKIT=1 docker build (layer cache)", change["docker"].format()],
    ]
    print(markdown_table(["command", "wall time, median (min–max)"], rows))
    difference = change["orch"].median - change["docker"].median
    print(f"orch - docker: {difference:+.2f} s; goal (<= +0.30 s): {'met' if difference <= 0.3 else 'missed'}")
    print(f"orch progress lines: {sorted(set(change['orch_building_lines']))}")

    if "cold" in results:
        cold = results["cold"]
        print(f"\n(c) cold build of {' '.join(results['cold_packages'])}, BuildKit cache pruned before each run")
        rows = [
            ["orch build (uv pip sync of the lock)", cold["orch"].format()],
            ["docker build, plain pip install", cold["docker"].format()],
        ]
        print(markdown_table(["command", "wall time, median (min–max)"], rows))
        cold_ratio = ratio(cold["orch"], cold["docker"])
        print(f"ratio orch/docker: {cold_ratio:.2f}; goal (<= 0.5): {'met' if cold_ratio <= 0.5 else 'missed'}")
        print("\nsteps of each cold run (orch: the environment image; the code layer is built after it)")
        for side_name, runs in cold["steps"].items():
            for index, run_steps in enumerate(runs):
                print(f"{side_name} run {index + 1}, {cold['samples'][side_name][index]:.2f} s:")
                for title, outcome in run_steps:
                    print(f"  {outcome:>10}  {title}")


def _actions(events: list[dict[str, str]]) -> str:
    actions = sorted({event["action"] for event in events})
    return ", ".join(actions) or "none"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5, help="runs per side for cases a and b (default 5)")
    parser.add_argument("--cold-repetitions", type=int, default=3, help="runs per side for case c (default 3)")
    parser.add_argument("--skip-cold", action="store_true", help="leave out case c (it prunes the BuildKit cache)")
    return parser.parse_args()


def main() -> int:
    arguments = parse_arguments()
    base = os.environ.get("ORCH_BASE_IMAGE", DEFAULT_BASE_IMAGE)
    run = run_id()
    machine = machine_description()
    print_machine(machine)
    print(f"base image {base}, run {run}")

    with tempfile.TemporaryDirectory(prefix="orch-bench-build-") as folder:
        root = Path(folder)
        env = {
            "ORCH_BASE_IMAGE": base,
            "ORCH_HOME": str(root / "orch-home"),
            "ORCH_UV_IMAGE": os.environ.get("ORCH_UV_IMAGE", DEFAULT_UV_IMAGE),
        }
        warm = Side(root, f"BenchWarm{run}", WARM_REQUIREMENTS, run, base, env)
        cold = Side(root, f"BenchCold{run}", COLD_REQUIREMENTS, run, base, env)
        results: dict = {"machine": machine, "base_image": base}
        try:
            print("preparing: first builds of the warm app on both sides (not timed)")
            warm.orch_build()
            lay_out_equivalent(warm)
            warm.docker_build(f"{warm.baseline_repository}:first")
            results["unchanged"] = measure_unchanged(warm, arguments.repetitions)
            results["code_change"] = measure_code_change(warm, arguments.repetitions)
            if not arguments.skip_cold:
                print("preparing: resolving the lock of the cold app (not timed)")
                cold.orch("lock", cold.reference)
                results["cold_packages"] = lay_out_plain_pip(cold)
                results["cold"] = measure_cold(cold, arguments.cold_repetitions)
        finally:
            warm.remove_images()
            cold.remove_images()
    report(results)
    print(f"\nraw results: {save_results('build_cache', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

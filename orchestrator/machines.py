"""The machine-type catalogue, shared by local runs and the runner."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import OptionError, closest_match

DEFAULT_CATALOGUE = Path(__file__).with_name("machines.yaml")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$")
_UNITS = {
    None: 1, "B": 1,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
}


@dataclasses.dataclass(frozen=True)
class MachineType:
    """Resources of one machine type: container limits and GPUs."""

    name: str
    cpus: float
    memory_bytes: int
    gpus: int = 0
    gpu_model: str | None = None
    gpu_memory_bytes: int | None = None

    @property
    def is_gpu(self) -> bool:
        return self.gpus > 0


def parse_size(value: Any, where: str) -> int:
    """Parse ``512MiB``, ``2GiB`` or a plain number of bytes."""
    match = _SIZE.match(str(value))
    if not match:
        raise OptionError(f"{where}: invalid size {value!r}; use a number with a unit such as 512MiB or 2GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> dict[str, MachineType]:
    """Read a machine-type catalogue from YAML."""
    try:
        with path.open() as file:
            document = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError) as error:
        raise OptionError(f"cannot read machine-type catalogue {path}: {error}") from error
    entries = document.get("machine_types") if isinstance(document, Mapping) else None
    if not isinstance(entries, Mapping) or not entries:
        raise OptionError(f"{path}: expected a non-empty 'machine_types' mapping")
    return {name: _machine_type(name, spec, path) for name, spec in entries.items()}


def _machine_type(name: str, spec: Any, path: Path) -> MachineType:
    where = f"{path}: machine type {name}"
    if not isinstance(spec, Mapping):
        raise OptionError(f"{where}: expected a mapping with cpus and memory, got {spec!r}")
    cpus = spec.get("cpus", 0)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not math.isfinite(cpus) or cpus <= 0:
        raise OptionError(f"{where}: cpus must be a positive number, got {cpus!r}")
    gpus = spec.get("gpus", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise OptionError(f"{where}: gpus must be zero or a positive integer, got {gpus!r}")
    memory = parse_size(spec.get("memory"), where)
    if memory <= 0:
        raise OptionError(f"{where}: memory must be positive, got {spec.get('memory')!r}")
    gpu_memory = spec.get("gpu_memory")
    return MachineType(
        name=name,
        cpus=float(cpus),
        memory_bytes=memory,
        gpus=gpus,
        gpu_model=spec.get("gpu_model"),
        gpu_memory_bytes=parse_size(gpu_memory, where) if gpu_memory is not None else None,
    )


def resolve(names: Sequence[str], catalogue: Mapping[str, MachineType]) -> list[MachineType]:
    """Look up each name of an ordered fallback list; unknown names are errors."""
    resolved = []
    for name in names:
        if name not in catalogue:
            suggestion = closest_match(name, catalogue)
            hint = f"; did you mean '{suggestion}'?" if suggestion else "."
            raise OptionError(
                f"unknown machine type '{name}'{hint} Available: {', '.join(catalogue)}"
            )
        resolved.append(catalogue[name])
    return resolved

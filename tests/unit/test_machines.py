"""The machine-type catalogue: reference sizes, sizes with units and lookups."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import machines
from orchestrator.errors import OptionError
from orchestrator.machines import MachineType

MiB = 2**20
GiB = 2**30
AVAILABLE = "XS, S, M, L, XL, GPU-A100, GPU-H100, GPU-H200"


@pytest.fixture(scope="module")
def catalogue() -> dict[str, MachineType]:
    return machines.load_catalogue()


def write_catalogue(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machines.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("name", "cpus", "memory_bytes"),
    [
        ("XS", 0.5, 512 * MiB),
        ("S", 1.0, 1 * GiB),
        ("M", 2.0, 2 * GiB),
        ("L", 4.0, 15 * GiB),
        ("XL", 8.0, 30 * GiB),
    ],
)
def test_catalogue_cpu_types(
    catalogue: dict[str, MachineType], name: str, cpus: float, memory_bytes: int,
) -> None:
    machine = catalogue[name]

    assert machine.name == name
    assert machine.cpus == cpus
    assert machine.memory_bytes == memory_bytes
    assert machine.gpus == 0
    assert not machine.is_gpu
    assert machine.gpu_model is None
    assert machine.gpu_memory_bytes is None


@pytest.mark.parametrize(
    ("name", "model", "gpu_memory_bytes"),
    [
        ("GPU-A100", "A100", 40 * GiB),
        ("GPU-H100", "H100", 80 * GiB),
        ("GPU-H200", "H200", 141 * GiB),
    ],
)
def test_catalogue_gpu_types(
    catalogue: dict[str, MachineType], name: str, model: str, gpu_memory_bytes: int,
) -> None:
    machine = catalogue[name]

    assert machine.gpus == 1
    assert machine.is_gpu
    assert machine.gpu_model == model
    assert machine.gpu_memory_bytes == gpu_memory_bytes


def test_catalogue_order(catalogue: dict[str, MachineType]) -> None:
    assert ", ".join(catalogue) == AVAILABLE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512MiB", 512 * MiB),
        ("2GiB", 2 * GiB),
        ("1.5GiB", 1536 * MiB),
        ("0.5KiB", 512),
        ("3TiB", 3 * 2**40),
        ("1KB", 1000),
        ("2MB", 2 * 10**6),
        ("1GB", 10**9),
        ("1TB", 10**12),
        ("100B", 100),
        ("100", 100),
        (100, 100),
        (" 1 MiB ", MiB),
    ],
)
def test_parse_size_valid(value: Any, expected: int) -> None:
    assert machines.parse_size(value, "test") == expected


@pytest.mark.parametrize("value", ["1gib", "GiB", "", "-1GiB", "1e3", "2 GiB 3", "lots", None, True])
def test_parse_size_invalid(value: Any) -> None:
    with pytest.raises(OptionError) as caught:
        machines.parse_size(value, "machines.yaml: machine type S")

    assert caught.value.message == (
        f"machines.yaml: machine type S: invalid size {value!r}; "
        "use a number with a unit such as 512MiB or 2GiB"
    )


def test_load_catalogue_custom(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path, """\
        machine_types:
          tiny: {cpus: 0.25, memory: 256MiB}
          gpu: {cpus: 4, memory: 16GiB, gpus: 2, gpu_model: L4, gpu_memory: 24GiB}
    """)

    catalogue = machines.load_catalogue(path)

    assert catalogue == {
        "tiny": MachineType("tiny", 0.25, 256 * MiB),
        "gpu": MachineType("gpu", 4.0, 16 * GiB, gpus=2, gpu_model="L4", gpu_memory_bytes=24 * GiB),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{path}: expected a non-empty 'machine_types' mapping"),
        ("other: 1\n", "{path}: expected a non-empty 'machine_types' mapping"),
        ("machine_types: {}\n", "{path}: expected a non-empty 'machine_types' mapping"),
        ("machine_types: [S, M]\n", "{path}: expected a non-empty 'machine_types' mapping"),
        ("- S\n", "{path}: expected a non-empty 'machine_types' mapping"),
        ("machine_types:\n  S: 3\n",
         "{path}: machine type S: expected a mapping with cpus and memory, got 3"),
        ("machine_types:\n  S:\n",
         "{path}: machine type S: expected a mapping with cpus and memory, got None"),
        ("machine_types:\n  S: [1, 1GiB]\n",
         "{path}: machine type S: expected a mapping with cpus and memory, got [1, '1GiB']"),
        ("machine_types:\n  S: {cpus: 0, memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got 0"),
        ("machine_types:\n  S: {cpus: -1, memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got -1"),
        ("machine_types:\n  S: {memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got 0"),
        ("machine_types:\n  S: {cpus: many, memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got 'many'"),
        ("machine_types:\n  S: {cpus: '2', memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got '2'"),
        ("machine_types:\n  S: {cpus: true, memory: 1GiB}\n",
         "{path}: machine type S: cpus must be a positive number, got True"),
        ("machine_types:\n  S: {cpus: 1}\n",
         "{path}: machine type S: invalid size None; use a number with a unit such as 512MiB or 2GiB"),
        ("machine_types:\n  S: {cpus: 1, memory: lots}\n",
         "{path}: machine type S: invalid size 'lots'; use a number with a unit such as 512MiB or 2GiB"),
        ("machine_types:\n  S: {cpus: 1, memory: 0}\n",
         "{path}: machine type S: memory must be positive, got 0"),
        ("machine_types:\n  S: {cpus: 1, memory: 0.5}\n",
         "{path}: machine type S: memory must be positive, got 0.5"),
        ("machine_types:\n  S: {cpus: 1, memory: 1GiB, gpus: -1}\n",
         "{path}: machine type S: gpus must be zero or a positive integer, got -1"),
        ("machine_types:\n  S: {cpus: 1, memory: 1GiB, gpus: 1.5}\n",
         "{path}: machine type S: gpus must be zero or a positive integer, got 1.5"),
        ("machine_types:\n  S: {cpus: 1, memory: 1GiB, gpus: true}\n",
         "{path}: machine type S: gpus must be zero or a positive integer, got True"),
        ("machine_types:\n  G: {cpus: 1, memory: 1GiB, gpus: 1, gpu_memory: huge}\n",
         "{path}: machine type G: invalid size 'huge'; use a number with a unit such as 512MiB or 2GiB"),
    ],
)
def test_load_catalogue_invalid(tmp_path: Path, text: str, message: str) -> None:
    path = write_catalogue(tmp_path, text)

    with pytest.raises(OptionError) as caught:
        machines.load_catalogue(path)

    assert caught.value.message == message.format(path=path)


@pytest.mark.parametrize(
    "text", ["machine_types: [\n", 'machine_types:\n  S: "\\x"\n'], ids=["unclosed-list", "bad-escape"],
)
def test_load_catalogue_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = write_catalogue(tmp_path, text)
    with pytest.raises(yaml.YAMLError) as parsed, path.open() as file:
        yaml.safe_load(file)
    problem = str(parsed.value)

    with pytest.raises(OptionError) as caught:
        machines.load_catalogue(path)

    assert caught.value.message == f"cannot read machine-type catalogue {path}: {problem}"
    assert caught.value.exit_code == 2


def test_load_catalogue_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "machines.yaml"

    with pytest.raises(OptionError) as caught:
        machines.load_catalogue(path)

    assert caught.value.message == (
        f"cannot read machine-type catalogue {path}: [Errno 2] No such file or directory: '{path}'"
    )


@pytest.mark.parametrize(("value", "shown"), [(".nan", "nan"), (".inf", "inf")])
def test_load_catalogue_cpus_not_finite(tmp_path: Path, value: str, shown: str) -> None:
    path = write_catalogue(tmp_path, f"machine_types:\n  S: {{cpus: {value}, memory: 1GiB}}\n")

    with pytest.raises(OptionError) as caught:
        machines.load_catalogue(path)

    assert caught.value.message == f"{path}: machine type S: cpus must be a positive number, got {shown}"


def test_resolve_fallback_order(catalogue: dict[str, MachineType]) -> None:
    resolved = machines.resolve(["GPU-H100", "GPU-A100", "M"], catalogue)

    assert [machine.name for machine in resolved] == ["GPU-H100", "GPU-A100", "M"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["GPU-X100"],
         f"unknown machine type 'GPU-X100'; did you mean 'GPU-H100'? Available: {AVAILABLE}"),
        (["M", "XXL"],
         f"unknown machine type 'XXL'; did you mean 'XL'? Available: {AVAILABLE}"),
    ],
)
def test_resolve_unknown(catalogue: dict[str, MachineType], names: list[str], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        machines.resolve(names, catalogue)

    assert caught.value.message == message
    assert caught.value.exit_code == 2


def test_resolve_unknown_without_suggestion(catalogue: dict[str, MachineType]) -> None:
    with pytest.raises(OptionError) as caught:
        machines.resolve(["tpu"], catalogue)

    assert caught.value.message == f"unknown machine type 'tpu'. Available: {AVAILABLE}"

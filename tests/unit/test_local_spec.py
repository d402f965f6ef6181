"""The Engine API bodies that create the containers of a run; no engine is needed."""

from __future__ import annotations

import dataclasses
import os
import socket

import pytest

from orchestrator.local.spec import RunSpec, app_container, resources, sidecar_container
from orchestrator.machines import MachineType, load_catalogue

GiB = 2**30
CATALOGUE = load_catalogue()
CPU_TYPES = [name for name, machine in CATALOGUE.items() if not machine.is_gpu]
GPU_TYPES = [name for name, machine in CATALOGUE.items() if machine.is_gpu]


def environment_of(config: dict) -> dict[str, str]:
    return dict(item.split("=", 1) for item in config["Env"])


@pytest.fixture
def spec(tmp_path) -> RunSpec:
    return RunSpec(
        run_id="0123456789abcdef0123456789abcdef",
        image="orchestrator-app/resize:aaaa-bbbb",
        sidecar_image="orchestrator-sidecar:cccc",
        app_name="resize",
        declaration_name="Resize",
        machine=CATALOGUE["M"],
        team="vision",
        env_name="staging",
        auth="private",
        control_token="control-token-1",
        keys_dir=str(tmp_path / "keys"),
        limit_max_requests=5,
        max_concurrency=3,
        max_queue=7,
        request_timeout=12.5,
        lease_seconds=9.0,
        drain_seconds=4.0,
        app_env={"MODEL": "small", "THREADS": "2"},
        extra_labels={"example.com/owner": "ops"},
    )


def test_catalogue_has_both_kinds():
    assert CPU_TYPES == ["XS", "S", "M", "L", "XL"]
    assert GPU_TYPES == ["GPU-A100", "GPU-H100", "GPU-H200"]


@pytest.mark.parametrize("name", CPU_TYPES)
def test_resources_cpu_types(name):
    machine = CATALOGUE[name]

    limits = resources(machine)

    assert limits == {"NanoCpus": int(machine.cpus * 1e9), "Memory": machine.memory_bytes}


@pytest.mark.parametrize("name", GPU_TYPES)
def test_resources_gpu_types(name):
    machine = CATALOGUE[name]

    limits = resources(machine)

    assert limits["NanoCpus"] == int(machine.cpus * 1e9)
    assert limits["Memory"] == machine.memory_bytes
    assert limits["DeviceRequests"] == [
        {"Driver": "", "Count": machine.gpus, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]


@pytest.mark.parametrize(
    ("name", "nano_cpus", "memory"),
    [("XS", 500_000_000, 512 * 2**20), ("GPU-H100", 12_000_000_000, 100 * GiB)],
)
def test_resources_sizes(name, nano_cpus, memory):
    host_config = resources(CATALOGUE[name])

    assert host_config["NanoCpus"] == nano_cpus
    assert host_config["Memory"] == memory


def test_resources_two_gpus():
    machine = MachineType(name="GPU-2x", cpus=16, memory_bytes=64 * GiB, gpus=2)

    [request] = resources(machine)["DeviceRequests"]

    assert request["Count"] == 2
    assert request["Capabilities"] == [["gpu"]]


def test_sidecar_publishes_on_loopback_free_port(spec):
    arguments = sidecar_container(spec)

    host_config = arguments["HostConfig"]
    assert host_config["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert "NetworkMode" not in host_config
    assert arguments["ExposedPorts"] == {"8080/tcp": {}}
    assert "NetworkingConfig" not in arguments


def test_sidecar_publishes_given_port(spec):
    arguments = sidecar_container(dataclasses.replace(spec, host_port=18123))

    bindings = arguments["HostConfig"]["PortBindings"]
    assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18123"}]}


def test_sidecar_mounts_keys_read_only(spec):
    host_config = sidecar_container(spec)["HostConfig"]

    assert host_config["Binds"] == [f"{spec.keys_dir}:/run/orchestrator:ro"]
    assert host_config["Memory"] == 128 * 2**20
    assert host_config["Init"] is True
    assert host_config["AutoRemove"] is True


def test_sidecar_environment_from_spec(spec):
    environment = environment_of(sidecar_container(spec))

    assert environment == {
        "ORCH_SIDECAR_PORT": "8080",
        "ORCH_UPSTREAM": "http://127.0.0.1:8000",
        "ORCH_LIMIT_MAX_REQUESTS": "5",
        "ORCH_MAX_CONCURRENCY": "3",
        "ORCH_MAX_QUEUE": "7",
        "ORCH_REQUEST_TIMEOUT": "12.5",
        "ORCH_AUTH_MODE": "private",
        "ORCH_TEAM": "vision",
        "ORCH_KEYS_FILE": "/run/orchestrator/keys.json",
        "ORCH_CONTROL_TOKEN": "control-token-1",
        "ORCH_LEASE_SECONDS": "9.0",
        "ORCH_DRAIN_SECONDS": "4.0",
    }


def test_sidecar_image_name_and_labels(spec):
    arguments = sidecar_container(spec)

    assert arguments["Image"] == "orchestrator-sidecar:cccc"
    assert spec.container_name("sidecar") == "orch-resize-01234567-sidecar"
    assert arguments["Labels"] == {
        "example.com/owner": "ops",
        "org.orchestrator.run": spec.run_id,
        "org.orchestrator.role": "sidecar",
        "org.orchestrator.app": "resize",
        "org.orchestrator.team": "vision",
        "org.orchestrator.env": "staging",
        "org.orchestrator.machine-type": "M",
        "org.orchestrator.owner-host": socket.gethostname(),
        "org.orchestrator.owner-pid": str(os.getpid()),
    }


def test_sidecar_on_network_publishes_nothing(spec):
    arguments = sidecar_container(spec, network="orch-runner-net", auto_remove=False)

    host_config = arguments["HostConfig"]
    assert "PortBindings" not in host_config
    assert host_config["NetworkMode"] == "orch-runner-net"
    assert host_config["AutoRemove"] is False
    assert arguments["NetworkingConfig"] == {
        "EndpointsConfig": {"orch-runner-net": {"Aliases": ["orch-resize-01234567-sidecar"]}}
    }


def test_app_joins_sidecar_namespace(spec):
    host_config = app_container(spec, "sidecar-id-1")["HostConfig"]

    assert host_config["NetworkMode"] == "container:sidecar-id-1"
    assert "PortBindings" not in host_config
    assert host_config["AutoRemove"] is True
    assert host_config["NanoCpus"] == 2_000_000_000
    assert host_config["Memory"] == 2 * GiB
    assert "DeviceRequests" not in host_config


def test_app_environment(spec):
    environment = environment_of(app_container(spec, "sidecar-id-1"))

    assert environment == {
        "MODEL": "small",
        "THREADS": "2",
        "ORCH_MODE": "serve",
        "ORCH_APP_HOST": "127.0.0.1",
        "ORCH_APP_PORT": "8000",
        "ORCH_CONTROL_TOKEN": "control-token-1",
        "ORCH_DRAIN_SECONDS": "4.0",
        "ORCH_APP_ID": "resize",
        "ORCH_TEAM": "vision",
        "ORCH_ENV": "staging",
    }


def test_app_settings_override_user_env(spec):
    spec = dataclasses.replace(spec, app_env={"ORCH_APP_HOST": "0.0.0.0", "ORCH_CONTROL_TOKEN": "mine"})

    environment = environment_of(app_container(spec, "sidecar-id-1"))

    assert environment["ORCH_APP_HOST"] == "127.0.0.1"
    assert environment["ORCH_CONTROL_TOKEN"] == "control-token-1"


def test_app_image_name_and_labels(spec):
    arguments = app_container(spec, "sidecar-id-1")

    assert arguments["Image"] == "orchestrator-app/resize:aaaa-bbbb"
    assert spec.container_name("app") == "orch-resize-01234567-app"
    assert arguments["StopSignal"] == "SIGTERM"
    labels = arguments["Labels"]
    assert labels["org.orchestrator.run"] == spec.run_id
    assert labels["org.orchestrator.role"] == "app"
    assert labels["org.orchestrator.app"] == "resize"
    assert labels["org.orchestrator.team"] == "vision"
    assert labels["org.orchestrator.env"] == "staging"
    assert labels["org.orchestrator.machine-type"] == "M"
    assert labels["example.com/owner"] == "ops"


def test_app_gpu_type_requests_gpus(spec):
    spec = dataclasses.replace(spec, machine=CATALOGUE["GPU-A100"])

    arguments = app_container(spec, "sidecar-id-1")

    assert arguments["HostConfig"]["DeviceRequests"] == [
        {"Driver": "", "Count": 1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert arguments["Labels"]["org.orchestrator.machine-type"] == "GPU-A100"


def test_app_call_mode_has_no_network_mode(spec):
    arguments = app_container(spec, sidecar_id="", mode="call", auto_remove=False)

    host_config = arguments["HostConfig"]
    assert "NetworkMode" not in host_config
    assert host_config["AutoRemove"] is False
    assert environment_of(arguments)["ORCH_MODE"] == "call"

"""The programs in examples/ run for real, with ``orch run --local`` as their docstrings show.

Running an example writes its lock file beside it (``examples/*/*.lock``),
as it would for a user. Those lock files belong in the repository.
"""

from __future__ import annotations

import base64
import json
import signal
import struct
import time
import zlib
from pathlib import Path

import pytest
import requests

from orchestrator.engine import ContainerEngine

from .orch_process import OrchProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_LABEL = "org.orchestrator.run"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Channels per pixel of each PNG colour type (PNG specification, IHDR).
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
GPU_ERROR = (
    "Error: machine type GPU-H100 needs 1 GPU(s), but this Docker engine cannot provide GPUs "
    "(could not select device driver \"\" with capabilities: [[gpu]]). Install the NVIDIA "
    "Container Toolkit and restart Docker, or run on a CPU machine type, e.g. --machine-type M."
)


@pytest.fixture(scope="module")
def containers(engine):
    return ContainerEngine(engine)


def new_run_containers(containers, before: set[str]) -> list[dict]:
    """Wait until the runs' containers not in ``before`` are gone. Remove and return those still there."""
    deadline = time.monotonic() + 20
    leftovers = []
    while time.monotonic() < deadline:
        leftovers = [item for item in containers.list(RUN_LABEL) if item["Id"] not in before]
        if not leftovers:
            return []
        time.sleep(0.5)
    for item in leftovers:
        containers.remove(item["Id"])
    return leftovers


@pytest.fixture(autouse=True)
def no_leftover_containers(containers):
    """Fail a test that leaves a run's container behind, and remove it."""
    before = {item["Id"] for item in containers.list(RUN_LABEL)}
    yield
    leftovers = new_run_containers(containers, before)
    if leftovers:
        pytest.fail(f"containers left behind: {[item['Names'] for item in leftovers]}")


def start(reference: str, *flags: str, env: dict[str, str] | None = None) -> OrchProcess:
    app_name = f"t-ex-{time.monotonic_ns() % 10**8}"
    return OrchProcess("run", str(EXAMPLES / reference), "--local", "--app-name", app_name, *flags, env=env)


def stop(run: OrchProcess) -> int:
    """Stop a served run with Ctrl-C and return its exit code."""
    run.send(signal.SIGINT)
    try:
        return run.wait(60)
    finally:
        run.kill()


def png_bytes(width: int, height: int) -> bytes:
    """Encode an RGB gradient as a PNG with the standard library."""
    rows = b"".join(
        b"\x00" + bytes(channel for x in range(width) for channel in (x % 256, y % 256, (x + y) % 256))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b"")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_size(data: bytes) -> tuple[int, int]:
    """Decode a non-interlaced PNG far enough to prove it is whole, and return (width, height).

    Checks the signature, every chunk's CRC, and that the image data
    decompresses to exactly one filter byte plus the pixels of each row.
    """
    assert data[:8] == PNG_SIGNATURE
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        position += 12 + length
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"

    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert interlace == 0
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    row_bytes = (width * PNG_CHANNELS[colour_type] * depth + 7) // 8
    assert len(pixels) == height * (1 + row_bytes)
    return width, height


@pytest.fixture(scope="module")
def thumbnails(containers, tmp_path_factory):
    """Serve one Thumbnails run to the tests of this module, then stop it with Ctrl-C."""
    before = {item["Id"] for item in containers.list(RUN_LABEL)}
    run = start("thumbnail/app.py::Thumbnails", env={"ORCH_HOME": str(tmp_path_factory.mktemp("orch-home"))})
    try:
        url = run.wait_ready()
    except BaseException:
        run.kill()
        raise
    yield url

    exit_code = stop(run)
    leftovers = new_run_containers(containers, before)
    assert exit_code == 0, run.output
    assert leftovers == []


@pytest.fixture(scope="module")
def photo() -> str:
    return base64.b64encode(png_bytes(300, 200)).decode()


def test_thumbnail_fits_max_size(thumbnails, photo):
    response = requests.post(thumbnails + "/thumbnail", json={"image": photo, "max_size": 64}, timeout=30)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["width"] == 64
    assert 0 < body["height"] <= 64
    assert abs(body["width"] / body["height"] - 1.5) < 0.05
    assert png_size(base64.b64decode(body["image"])) == (body["width"], body["height"])


def test_thumbnail_info(thumbnails, photo):
    response = requests.post(thumbnails + "/info", json={"image": photo}, timeout=30)

    assert response.status_code == 200, response.text
    assert response.json() == {"format": "PNG", "width": 300, "height": 200, "mode": "RGB"}


def test_thumbnail_max_size_too_small(thumbnails, photo):
    response = requests.post(thumbnails + "/thumbnail", json={"image": photo, "max_size": 1}, timeout=30)

    assert response.status_code == 422
    assert response.json() == {"detail": [
        {"loc": ["max_size"], "msg": "Input should be greater than or equal to 8", "type": "greater_than_equal"},
    ]}


def test_thumbnail_openapi(thumbnails):
    response = requests.get(thumbnails + "/openapi.json", timeout=30)

    assert response.status_code == 200
    document = response.json()
    assert sorted(document["paths"]) == ["/info", "/thumbnail"]
    reference = document["paths"]["/thumbnail"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert sorted(schema["properties"]) == ["format", "image", "max_size"]
    assert schema["required"] == ["image"]
    assert schema["properties"]["max_size"]["minimum"] == 8
    assert schema["properties"]["max_size"]["maximum"] == 2048


def test_countdown_streams_chunks():
    run = start("streaming/app.py::Countdown")
    try:
        url = run.wait_ready()
        started = time.monotonic()
        arrivals = []
        with requests.post(url + "/count", json={"start": 3, "delay": 0.5}, stream=True, timeout=30) as response:
            status = response.status_code
            for chunk in response.iter_content(chunk_size=None):
                arrivals.append((chunk.decode(), time.monotonic() - started))
        exit_code = stop(run)
    finally:
        run.kill()

    assert status == 200
    assert [chunk for chunk, _ in arrivals] == ["3\n", "2\n", "1\n", "liftoff\n"]
    # The app sleeps 0.5 s after each number, so a streamed first chunk comes
    # at least 1.5 s before the last. A buffered response brings all at once.
    assert arrivals[-1][1] - arrivals[0][1] >= 1.0
    assert exit_code == 0, run.output


def test_platform_report_prints_json():
    run = start("hello/functions.py::platform_report")
    exit_code = run.wait(300)

    assert exit_code == 0, run.output
    [line] = [line for line in run.stdout if line.startswith("{")]
    report = json.loads(line)
    assert report["six"] == "1.17.0"
    assert report["python"].startswith("3.11.")


def test_add_serves_post_root():
    run = start("hello/functions.py::add")
    try:
        url = run.wait_ready()
        response = requests.post(url + "/", json={"a": 1, "b": 2}, timeout=30)
        exit_code = stop(run)
    finally:
        run.kill()

    assert response.status_code == 200
    assert response.json() == {"sum": 3.0}
    assert exit_code == 0, run.output


def test_gpu_info_without_nvidia_runtime():
    run = start("gpu/app.py::GpuInfo")
    exit_code = run.wait(600)

    assert exit_code == 1, run.output
    errors = [line for line in run.stderr if line.startswith("Error:")]
    assert errors == [GPU_ERROR], run.output

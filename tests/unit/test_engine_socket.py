"""Engine API details of the Unix-socket client that need no engine."""

from __future__ import annotations

import io
import struct

import pytest

from orchestrator import engine_socket


@pytest.mark.parametrize(
    ("engine_version", "prefix"),
    [
        ("1.41", "/v1.41"),
        ("1.45", "/v1.45"),
        ("1.52", "/v1.45"),
        (None, ""),
        ("not-a-version", ""),
    ],
)
def test_version_prefix_takes_the_lower(engine_version: str | None, prefix: str) -> None:
    assert engine_socket._version_prefix(engine_version) == prefix


class FakeResponse(io.BytesIO):
    """A response body with the connection attribute that ``close()`` expects."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.connection = io.BytesIO()


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_log_frames_merge_both_streams() -> None:
    response = FakeResponse(frame(1, b"out 1\n") + frame(2, b"err 1\n") + frame(1, b"out 2\n"))

    payloads = list(engine_socket.log_frames(response))  # type: ignore[arg-type]

    assert payloads == [b"out 1\n", b"err 1\n", b"out 2\n"]
    assert response.closed
    assert response.connection.closed


def test_log_frames_stop_at_a_cut_header() -> None:
    response = FakeResponse(frame(1, b"whole\n") + b"\x01\x00")

    assert list(engine_socket.log_frames(response)) == [b"whole\n"]  # type: ignore[arg-type]

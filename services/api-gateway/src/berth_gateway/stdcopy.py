"""Docker's multiplexed stdout/stderr framing (pkg/stdcopy) and the stream media types."""

from __future__ import annotations

import struct

from berth_gateway.versions import at_least

SYSTEMERR = 3
_HEADER = struct.Struct(">BxxxL")
MAX_FRAME = 0xFFFFFFFF

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def frame(stream: int, data: bytes) -> bytes:
    """One frame: [stream, 0, 0, 0, len (uint32 BE)] followed by the payload."""
    return _HEADER.pack(stream, len(data)) + data


def encode(stream: int, data: bytes, tty: bool) -> bytes:
    """What goes on the wire for one chunk of output: raw with a TTY, framed without."""
    if tty:
        return data
    return frame(stream, data)


def media_type(api_version: str, tty: bool) -> str:
    """Since API 1.42 non-TTY streams say they are multiplexed; before, everything is raw."""
    if not tty and at_least(api_version, "1.42"):
        return MULTIPLEXED_STREAM
    return RAW_STREAM


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split a buffer of complete frames (for tests and diagnostics)."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        stream, size = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        frames.append((stream, data[pos : pos + size]))
        pos += size
    return frames

"""stdcopy framing and stream media types."""

from __future__ import annotations

import struct

from berth_gateway import stdcopy


def test_frame_header_is_stream_three_zeros_and_big_endian_length() -> None:
    data = b"hello\n"
    framed = stdcopy.frame(1, data)
    assert framed[:8] == bytes([1, 0, 0, 0, 0, 0, 0, 6])
    assert framed[8:] == data
    # The way docker-py reads it.
    stream, size = struct.unpack(">BxxxL", framed[:8])
    assert (stream, size) == (1, 6)


def test_large_frame_length() -> None:
    data = b"x" * 70000
    assert stdcopy.frame(2, data)[:8] == bytes([2, 0, 0, 0]) + (70000).to_bytes(4, "big")


def test_tty_output_is_raw() -> None:
    assert stdcopy.encode(1, b"abc", tty=True) == b"abc"
    assert stdcopy.encode(2, b"abc", tty=False) == stdcopy.frame(2, b"abc")


def test_parse_round_trip() -> None:
    buf = stdcopy.frame(1, b"out") + stdcopy.frame(2, b"err") + stdcopy.frame(1, b"")
    assert stdcopy.parse_frames(buf) == [(1, b"out"), (2, b"err"), (1, b"")]


def test_media_types_by_version() -> None:
    assert stdcopy.media_type("1.44", tty=False) == stdcopy.MULTIPLEXED_STREAM
    assert stdcopy.media_type("1.42", tty=False) == stdcopy.MULTIPLEXED_STREAM
    assert stdcopy.media_type("1.41", tty=False) == stdcopy.RAW_STREAM
    assert stdcopy.media_type("1.44", tty=True) == stdcopy.RAW_STREAM

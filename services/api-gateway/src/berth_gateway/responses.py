"""JSON responses with Docker's exact Content-Type (clients compare it as a string)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

JSON = "application/json"

_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def json_response(obj: Any, status: int = 200) -> web.Response:
    # body= (not text=) so aiohttp does not append "; charset=utf-8".
    return web.Response(status=status, body=encode(obj), headers={"Content-Type": JSON})


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status)


def no_content() -> web.Response:
    return web.Response(status=204)


def json_line(obj: Any) -> bytes:
    """One record of a JSON-lines stream: the object and a newline, written in one chunk."""
    return _encoder.encode(obj) + b"\n"

"""Decoding JSON request bodies into contract types, with Docker-like 400 messages."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import web
from berth_contracts.errors import InvalidParameter

T = TypeVar("T")


async def read_json(request: web.Request, tp: type[T], *, allow_empty: bool = False) -> T | None:
    """The body decoded as `tp`; None for an empty body when allowed.

    A malformed document and a field of the wrong type are both 400 "invalid JSON: ...", as
    moby's httputils.ReadJSON reports them.
    """
    data = await request.read()
    if not data.strip():
        if allow_empty:
            return None
        raise InvalidParameter("invalid JSON: got EOF while reading request body")
    try:
        return msgspec.json.decode(data, type=tp)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None

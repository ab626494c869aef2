"""Decoding JSON request bodies into contract types, with Docker-like 400 messages."""

from __future__ import annotations

import functools
from typing import TypeVar

import msgspec
from aiohttp import web
from berth_contracts.errors import InvalidParameter

from berth_gateway.gonulls import go_nulls

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
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            obj = msgspec.json.decode(data)
            if isinstance(obj, dict):
                obj = _go_field_names(obj, tp)
            if b"null" in data:  # the walk costs; most bodies have no null
                obj = go_nulls(obj, tp)
            return msgspec.convert(obj, tp)
        return msgspec.json.decode(data, type=tp)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidParameter(f"invalid JSON: {exc}") from None


def _go_field_names(obj: dict[str, object], tp: type[msgspec.Struct]) -> dict[str, object]:
    """Go's encoding/json matches a struct's field names case-insensitively, and clients rely
    on it (docker-py sends `detachKeys` for DetachKeys): the top-level keys of the body are
    matched the same way. An exact match wins over one that differs only in case."""
    names = _field_names(tp)
    out = dict(obj)
    for key, value in obj.items():
        name = names.get(key.lower())
        if name is not None and name != key:
            out.pop(key)
            out.setdefault(name, value)
    return out


@functools.cache
def _field_names(tp: type[msgspec.Struct]) -> dict[str, str]:
    """Lower-cased wire name -> wire name; cached: msgspec's introspection takes ~170 us."""
    return {f.encode_name.lower(): f.encode_name for f in msgspec.structs.fields(tp)}

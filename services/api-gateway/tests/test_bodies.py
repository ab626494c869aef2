"""JSON bodies: Go's case-insensitive field names and nulls, Docker's 400 words."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from typing import Any, cast

import msgspec
import pytest
from aiohttp import web
from berth_contracts.docker import CreateRequest
from berth_contracts.errors import InvalidParameter
from berth_contracts.execs import ExecConfig
from berth_gateway import routes
from berth_gateway.bodies import read_json
from msgspec import inspect as mi

pytestmark = pytest.mark.anyio


class _Body:
    """What read_json uses of a request: its bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self) -> bytes:
        return self._data


async def _read(data: bytes) -> Any:
    return await read_json(cast(web.Request, _Body(data)), ExecConfig)


async def test_field_names_match_case_insensitively_like_go() -> None:
    # docker-py sends `detachKeys`; Go's encoding/json finds DetachKeys for it.
    config = await _read(b'{"detachKeys": "ctrl-a,b", "cmd": ["true"], "TTY": true}')
    assert (config.detach_keys, config.cmd, config.tty) == ("ctrl-a,b", ["true"], True)
    exact_wins = await _read(b'{"detachkeys": "x", "DetachKeys": "y"}')
    assert exact_wins.detach_keys == "y"


async def test_bad_bodies_are_400_in_dockers_words() -> None:
    with pytest.raises(InvalidParameter, match="invalid JSON: Expected `bool`"):
        await _read(b'{"tty": "yes"}')
    with pytest.raises(InvalidParameter, match="invalid JSON"):
        await _read(b'{"Tty": ')
    with pytest.raises(InvalidParameter, match="got EOF while reading request body"):
        await _read(b"")


# --- JSON null, read as Go reads it, in every field of every body a route decodes -----------


async def _decode(doc: Any, tp: type) -> Any:
    return await read_json(cast(web.Request, _Body(msgspec.json.encode(doc))), tp)


def body_types() -> list[type]:
    """Every type a route decodes a body into: found in the routes' source, so a new route's
    body is walked without anyone adding it here."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        source = open(cast(str, module.__file__)).read()
        for name in re.findall(r"read_json\(\s*request,\s*(\w+)", source):
            found[f"{info.name}.{name}"] = getattr(module, name)
    return [found[k] for k in sorted(found)]


def _null_docs(t: mi.Type, seen: frozenset[type] = frozenset()) -> Iterator[Any]:
    """Documents of type t with null in every place a value can be: all fields of each struct
    at once, each list element, each map value, down every nested type."""
    if isinstance(t, mi.UnionType):
        for member in t.types:
            yield from _null_docs(member, seen)
    elif isinstance(t, mi.StructType) and t.cls not in seen:
        yield {f.encode_name: None for f in t.fields}
        for f in t.fields:
            for sub in _null_docs(f.type, seen | {t.cls}):
                yield {f.encode_name: sub}
    elif isinstance(t, mi.ListType):
        yield [None]
        for sub in _null_docs(t.item_type, seen):
            yield [sub]
    elif isinstance(t, mi.DictType):
        yield {"k": None}
        for sub in _null_docs(t.value_type, seen):
            yield {"k": sub}


def test_every_route_body_is_found() -> None:
    names = {t.__name__ for t in body_types()}
    assert {"CreateRequest", "ExecConfig", "ExecStartConfig", "UpdateConfig"} <= names
    assert len(body_types()) >= 7


@pytest.mark.parametrize("tp", body_types(), ids=lambda t: f"{t.__module__.rsplit('.', 1)[-1]}.{t.__name__}")
async def test_null_everywhere_decodes_as_in_go(tp: type) -> None:
    docs = list(_null_docs(mi.type_info(tp)))
    assert docs
    for doc in docs:
        await _decode(doc, tp)
    # A body of nulls only is the body of defaults, as `null` has no effect on a Go field.
    assert await _decode(docs[0], tp) == tp()
    assert await _decode(None, tp) == tp()


async def test_nulls_take_gos_zero_values() -> None:
    body = await _decode(
        {
            "Image": "busybox",
            "Tty": None,
            "Cmd": None,
            "Labels": {"a": None},
            "Healthcheck": {"Test": ["CMD", "true"], "StartPeriod": None, "Interval": 10},
            "HostConfig": {
                "RestartPolicy": None,
                "Ulimits": [{"Name": "nofile", "Soft": None, "Hard": 1}],
                "Binds": [None],
            },
        },
        CreateRequest,
    )
    assert (body.image, body.tty, body.cmd, body.labels) == ("busybox", False, None, {"a": ""})
    assert body.healthcheck is not None
    assert (body.healthcheck.start_period, body.healthcheck.interval) == (0, 10)
    assert body.host_config.restart_policy.name == ""
    assert body.host_config.ulimits is not None
    assert (body.host_config.ulimits[0].soft, body.host_config.ulimits[0].hard) == (0, 1)
    assert body.host_config.binds == [""]

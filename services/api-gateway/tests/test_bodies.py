"""JSON bodies: Go's case-insensitive field names, Docker's 400 words."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiohttp import web
from berth_contracts.errors import InvalidParameter
from berth_contracts.execs import ExecConfig
from berth_gateway.bodies import read_json

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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

"""lifecycle's HTTP listener answers every failure as {"message"}, never aiohttp's own page."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from berth_contracts.errors import NotFound
from berth_lifecycle import httperrors

pytestmark = pytest.mark.anyio


async def _boom(request: web.Request) -> web.Response:
    raise ProcessLookupError("gone")


async def _missing(request: web.Request) -> web.Response:
    raise NotFound("Could not find the file /x in container c")


async def _midstream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"partial")
    raise RuntimeError("after the headers")


async def test_failures_are_docker_shaped(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    httperrors.install(app)
    app.router.add_post("/boom", _boom)
    app.router.add_post("/missing", _missing)
    app.router.add_post("/midstream", _midstream)
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.ERROR, logger=httperrors.__name__):
            r = await client.post("/boom")
            assert (r.status, await r.json()) == (500, {"message": "ProcessLookupError: gone"})
        assert "POST /boom failed" in caplog.text
        r = await client.post("/missing")
        assert r.status == 404
        assert await r.json() == {"message": "Could not find the file /x in container c"}
        r = await client.post("/midstream")
        assert r.status == 200  # the stream had begun: it is cut short, not rewritten
        with pytest.raises(Exception):  # noqa: B017, PT011 - aiohttp's payload error
            await r.read()

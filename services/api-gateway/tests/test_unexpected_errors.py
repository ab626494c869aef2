"""Any exception a handler did not expect is a Docker-shaped 500 and a log line."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from berth_gateway import errors
from berth_gateway.app import build_app

pytestmark = pytest.mark.anyio


async def _boom(request: web.Request) -> web.Response:
    raise ProcessLookupError("no such process")


async def _group(request: web.Request) -> web.Response:
    raise ExceptionGroup("task group", [KeyError("k")])


async def test_unexpected_exceptions_are_json_500s(caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(None)
    for prefix in ("", "/v1.44"):
        app.router.add_post(prefix + "/boom", _boom)
        app.router.add_post(prefix + "/group", _group)
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.ERROR, logger=errors.__name__):
            for path, message in (
                ("/v1.44/boom", "ProcessLookupError: no such process"),
                ("/group", "ExceptionGroup: task group (1 sub-exception)"),
            ):
                r = await client.post(path)
                assert r.status == 500
                assert r.headers["Content-Type"] == "application/json"
                assert await r.json() == {"message": message}
        assert "POST /v1.44/boom failed" in caplog.text
        assert "POST /group failed" in caplog.text

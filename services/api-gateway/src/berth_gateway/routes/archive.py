"""GET/PUT/HEAD /containers/{id}/archive (`docker cp`): the engine names lifecycle's single-use
URL and the gateway streams the tar between it and the client (never over NATS)."""

from __future__ import annotations

import base64

import aiohttp
import msgspec
from aiohttp import web
from berth_contracts.archives import ArchiveMode, ArchiveOpened, ContainerArchive, PathStat
from berth_contracts.errors import InvalidParameter, Unavailable
from berth_kit.tracing import inject

from berth_gateway.backend import backend
from berth_gateway.params import qbool
from berth_gateway.responses import error_response
from berth_gateway.upload import error_message, split_target

STAT_HEADER = "X-Docker-Container-Path-Stat"
# Copies can be large; the timeout bounds silence, not the transfer.
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=600)


def _stat_header(stat: PathStat | None) -> dict[str, str]:
    if stat is None:
        return {}
    return {STAT_HEADER: base64.b64encode(msgspec.json.encode(stat)).decode()}


async def _open(request: web.Request, mode: ArchiveMode) -> ArchiveOpened:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("path is required")  # moby's httputils words for a missing path
    return await backend(request).call(
        ContainerArchive(
            ref=request.match_info["id"],
            path=path,
            mode=mode,
            no_overwrite_dir_non_dir=qbool(request, "noOverwriteDirNonDir"),
        ),
        ArchiveOpened,
        reply_timeout=90.0,
    )


async def head(request: web.Request) -> web.Response:
    opened = await _open(request, "stat")
    return web.Response(status=200, headers=_stat_header(opened.stat))


async def get(request: web.Request) -> web.StreamResponse:
    opened = await _open(request, "get")
    return await relay_tar(request, opened.url, _stat_header(opened.stat))


async def relay_tar(
    request: web.Request, url: str, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """POST to lifecycle's single-use `url` and stream the tar it answers to the client."""
    connector, target = split_target(url)
    async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
        try:
            upstream = await session.post(target, headers=inject({}))
        except aiohttp.ClientError as exc:
            raise Unavailable(f"archive service unreachable: {exc}") from None
        async with upstream:
            if upstream.status >= 400:
                return error_response(upstream.status, await error_message(upstream))
            response = web.StreamResponse(
                status=200,
                headers={"Content-Type": "application/x-tar", **(headers or {})},
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


async def put(request: web.Request) -> web.Response:
    opened = await _open(request, "put")
    connector, target = split_target(opened.url)
    headers = inject({"Content-Type": "application/x-tar"})
    async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
        try:
            upstream = await session.post(target, data=request.content, headers=headers)
        except aiohttp.ClientError as exc:
            raise Unavailable(f"archive service unreachable: {exc}") from None
        async with upstream:
            if upstream.status >= 400:
                return error_response(upstream.status, await error_message(upstream))
    return web.Response(status=200)

"""More container endpoints: pause and unpause."""

from __future__ import annotations

from aiohttp import web
from berth_contracts.base import Done
from berth_contracts.containerops import ContainerPause, ContainerUnpause

from berth_gateway.backend import backend
from berth_gateway.responses import no_content


async def pause(request: web.Request) -> web.Response:
    await backend(request).call(ContainerPause(ref=request.match_info["id"]), Done)
    return no_content()


async def unpause(request: web.Request) -> web.Response:
    await backend(request).call(ContainerUnpause(ref=request.match_info["id"]), Done)
    return no_content()

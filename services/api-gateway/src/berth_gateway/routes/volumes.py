"""/volumes: create, list, inspect, remove, prune (the engine's volume service)."""

from __future__ import annotations

import msgspec
from aiohttp import web
from berth_contracts import volumes

from berth_gateway.backend import backend
from berth_gateway.bodies import read_json
from berth_gateway.params import qbool, qfilters
from berth_gateway.responses import json_response, no_content


class _CreateBody(msgspec.Struct, rename="pascal"):
    name: str = ""
    driver: str = ""
    driver_opts: dict[str, str] | None = None
    labels: dict[str, str] | None = None


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, _CreateBody, allow_empty=True) or _CreateBody()
    reply = await backend(request).call(
        volumes.VolumeCreate(
            name=body.name,
            driver=body.driver,
            driver_opts=body.driver_opts or {},
            labels=body.labels or {},
        ),
        volumes.VolumeDetail,
    )
    return json_response(reply.volume, status=201)


async def list_volumes(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        volumes.VolumeList(filters=qfilters(request)), volumes.VolumeListing
    )
    return json_response({"Volumes": reply.volumes, "Warnings": None})


async def inspect(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        volumes.VolumeGet(name=request.match_info["name"]), volumes.VolumeDetail
    )
    return json_response(reply.volume)


async def remove(request: web.Request) -> web.Response:
    await backend(request).call(
        volumes.VolumeRemove(name=request.match_info["name"], force=qbool(request, "force")),
        volumes.VolumeDetail,
    )
    return no_content()


async def prune(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        volumes.VolumePrune(filters=qfilters(request)), volumes.VolumesPruned, reply_timeout=120.0
    )
    return json_response(
        {"VolumesDeleted": reply.volumes_deleted, "SpaceReclaimed": reply.space_reclaimed}
    )

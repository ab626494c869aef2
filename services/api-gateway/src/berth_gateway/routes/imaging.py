"""POST /commit, GET /containers/{id}/changes and /export, GET /images/{name}/history,
GET /system/df. An export's tar is streamed from lifecycle's single-use URL, never over NATS."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from berth_contracts.docker import ContainerConfig
from berth_contracts.imaging import (
    ChangeList,
    ContainerChanges,
    ContainerCommit,
    ContainerCommitted,
    ContainerExport,
    DiskUsage,
    ExportTarget,
    HistoryItems,
    ImageHistoryGet,
    SystemDf,
)

from berth_gateway.backend import backend
from berth_gateway.bodies import read_json
from berth_gateway.params import qbool
from berth_gateway.responses import json_response
from berth_gateway.routes.archive import relay_tar


async def commit(request: web.Request) -> web.Response:
    body = await request.read()
    # The docker CLI sends `null` when no config is given.
    config = None if body.strip() in (b"", b"null") else await read_json(request, ContainerConfig)
    q = request.query
    # moby: pause defaults to true from API 1.13 on when the parameter is absent or empty.
    pause = qbool(request, "pause") if q.get("pause", "") != "" else True
    reply = await backend(request).call(
        ContainerCommit(
            ref=q.get("container", ""),
            repo=q.get("repo", ""),
            tag=q.get("tag", ""),
            author=q.get("author", ""),
            comment=q.get("comment", ""),
            changes=q.getall("changes", []),
            pause=pause,
            config=config,
        ),
        ContainerCommitted,
        reply_timeout=1900.0,
    )
    return json_response({"Id": reply.id}, status=201)


async def changes(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        ContainerChanges(ref=request.match_info["id"]), ChangeList, reply_timeout=320.0
    )
    return json_response(reply.changes or None)  # moby: null when nothing changed


async def export(request: web.Request) -> web.StreamResponse:
    target = await backend(request).call(ContainerExport(ref=request.match_info["id"]), ExportTarget)
    return await relay_tar(request, target.url)


async def history(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        ImageHistoryGet(ref=request.match_info["name"]), HistoryItems
    )
    return json_response(reply.items)


def df_body(usage: DiskUsage) -> dict[str, Any]:
    volumes = None
    if usage.volumes is not None:
        volumes = [
            {**msgspec.to_builtins(v.volume), "UsageData": {"Size": v.size, "RefCount": v.ref_count}}
            for v in usage.volumes
        ]
    return {
        "LayersSize": usage.layers_size,
        "Images": usage.images,
        "Containers": usage.containers,
        "Volumes": volumes,
        "BuildCache": None,  # no builder yet; dockerd 20.10 says null when it has none
        "BuilderSize": 0,
    }


async def df(request: web.Request) -> web.Response:
    types = request.query.getall("type", [])
    reply = await backend(request).call(SystemDf(types=types), DiskUsage, reply_timeout=300.0)
    return json_response(df_body(reply))

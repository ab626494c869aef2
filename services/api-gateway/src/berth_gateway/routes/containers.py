"""Container endpoints that are plain request/response: create, list, inspect, start, stop..."""

from __future__ import annotations

from aiohttp import web
from berth_contracts.base import Done
from berth_contracts.docker import CreateRequest
from berth_contracts.engine import (
    ContainerCreate,
    ContainerCreated,
    ContainerDetail,
    ContainerGet,
    ContainerKill,
    ContainerList,
    ContainerListing,
    ContainerPrune,
    ContainerRemove,
    ContainerRename,
    ContainerResize,
    ContainersPruned,
    ContainerStart,
    ContainerStop,
)
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth, NotModified

from berth_gateway.backend import backend
from berth_gateway.bodies import read_json
from berth_gateway.params import qbool, qfilters, qint, qopt_int
from berth_gateway.responses import json_response, no_content

# How long past the stop timeout the gateway waits for the engine to answer a stop.
_STOP_GRACE = 30.0
_DEFAULT_STOP_TIMEOUT = 10


async def create(request: web.Request) -> web.Response:
    body = await read_json(request, CreateRequest)
    assert body is not None
    reply = await backend(request).call(
        ContainerCreate(
            body=body,
            name=request.query.get("name", ""),
            platform=request.query.get("platform", ""),
        ),
        ContainerCreated,
        reply_timeout=120.0,  # may resolve and unpack an image
    )
    return json_response({"Id": reply.id, "Warnings": reply.warnings}, status=201)


async def list_containers(request: web.Request) -> web.Response:
    filters = qfilters(request)
    # The legacy since/before parameters are filters in disguise, as moby treats them.
    for legacy in ("since", "before"):
        if request.query.get(legacy):
            filters.setdefault(legacy, []).append(request.query[legacy])
    reply = await backend(request).call(
        ContainerList(
            all=qbool(request, "all"),
            limit=qint(request, "limit", -1),
            size=qbool(request, "size"),
            filters=filters,
        ),
        ContainerListing,
    )
    return json_response(reply.items)


async def inspect(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        ContainerGet(ref=request.match_info["id"], size=qbool(request, "size")), ContainerDetail
    )
    return json_response(reply.container)


async def start(request: web.Request) -> web.Response:
    if request.query.get("checkpoint"):
        raise NotImplementedByBerth("checkpoints are not supported by berth yet")
    await backend(request).call(
        ContainerStart(ref=request.match_info["id"]), Done, reply_timeout=120.0
    )
    return no_content()


def _stop_command(request: web.Request) -> ContainerStop:
    timeout = qopt_int(request, "t")
    if timeout is None:
        timeout = qopt_int(request, "timeout")
    return ContainerStop(
        ref=request.match_info["id"], timeout=timeout, signal=request.query.get("signal", "")
    )


def _stop_deadline(command: ContainerStop) -> float:
    wait = command.timeout if command.timeout is not None and command.timeout >= 0 else 0
    return max(wait, _DEFAULT_STOP_TIMEOUT) + _STOP_GRACE


async def stop(request: web.Request) -> web.Response:
    command = _stop_command(request)
    await backend(request).call(command, Done, reply_timeout=_stop_deadline(command))
    return no_content()


async def restart(request: web.Request) -> web.Response:
    """Stop (if running), then start: what moby's containerRestart does."""
    command = _stop_command(request)
    try:
        await backend(request).call(command, Done, reply_timeout=_stop_deadline(command))
    except NotModified:
        pass  # already stopped: just start it
    await backend(request).call(ContainerStart(ref=command.ref), Done, reply_timeout=120.0)
    return no_content()


async def kill(request: web.Request) -> web.Response:
    signal = request.query.get("signal", "") or "KILL"
    await backend(request).call(ContainerKill(ref=request.match_info["id"], signal=signal), Done)
    return no_content()


async def remove(request: web.Request) -> web.Response:
    await backend(request).call(
        ContainerRemove(
            ref=request.match_info["id"],
            force=qbool(request, "force"),
            volumes=qbool(request, "v"),
            link=qbool(request, "link"),
        ),
        Done,
        reply_timeout=60.0,
    )
    return no_content()


def _dimension(request: web.Request, name: str, word: str) -> int:
    raw = request.query.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"invalid resize {word}") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise InvalidParameter(f"invalid resize {word}")
    return value


async def resize(request: web.Request) -> web.Response:
    height = _dimension(request, "h", "height")
    width = _dimension(request, "w", "width")
    # The engine answers 409 for a container that is not running and ignores it without a TTY.
    await backend(request).call(
        ContainerResize(ref=request.match_info["id"], height=height, width=width), Done
    )
    return web.Response(status=200)


async def rename(request: web.Request) -> web.Response:
    await backend(request).call(
        ContainerRename(ref=request.match_info["id"], name=request.query.get("name", "")), Done
    )
    return no_content()


async def prune(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        ContainerPrune(filters=qfilters(request)), ContainersPruned, reply_timeout=120.0
    )
    # moby sends null, not [], when nothing was deleted.
    deleted = reply.containers_deleted or None
    return json_response({"ContainersDeleted": deleted, "SpaceReclaimed": reply.space_reclaimed})

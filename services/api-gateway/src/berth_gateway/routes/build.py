"""POST /build: dockerd's classic builder (the builder service). The query becomes BuildOptions
(api/server/router/build's newImageBuildOptions), the builder hands out an upload URL, the
context (the request body) goes there over HTTP and its JSON-lines build stream comes back.

A client that hangs up cancels the handler (handler_cancellation), which closes the upload
connection: the builder's handler is cancelled in turn and removes the running step's container.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from berth_contracts import subjects
from berth_contracts.base import Done
from berth_contracts.builder import BuildCancel, BuildOptions, BuildPrepare, UploadTarget
from berth_contracts.errors import InternalError, InvalidParameter, NotImplementedByBerth

from berth_gateway.backend import backend
from berth_gateway.params import qbool, qint
from berth_gateway.upload import relay_upload


def _json_param(request: web.Request, name: str, default: Any) -> Any:
    raw = request.query.get(name, "")
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name} parameter: {raw}") from None


def build_options(request: web.Request) -> BuildOptions:
    q = request.query
    if q.get("version", "1") == "2":
        raise NotImplementedByBerth(
            "BuildKit is not supported by berth: use the classic builder (version=1)"
        )
    if qbool(request, "squash"):
        # dockerd 20.10 without experimental features, word for word (berth has none).
        raise InvalidParameter("squash is only supported with experimental mode")
    build_args = _json_param(request, "buildargs", {})
    labels = _json_param(request, "labels", {})
    cache_from = _json_param(request, "cachefrom", [])
    if (
        not isinstance(build_args, dict)
        or not isinstance(labels, dict)
        or not isinstance(cache_from, list)
    ):
        raise InvalidParameter("buildargs and labels must be JSON objects, cachefrom a JSON list")
    # moby: rm defaults to true; forcerm implies it.
    force_remove = qbool(request, "forcerm")
    remove = True if force_remove else qbool(request, "rm", default=True)
    return BuildOptions(
        tags=list(q.getall("t", [])),
        dockerfile=q.get("dockerfile", "") or "Dockerfile",
        build_args={str(k): (None if v is None else str(v)) for k, v in build_args.items()},
        target=q.get("target", ""),
        labels={str(k): str(v) for k, v in labels.items()},
        no_cache=qbool(request, "nocache"),
        pull=qbool(request, "pull"),
        quiet=qbool(request, "q"),
        remove=remove,
        force_remove=force_remove,
        network_mode=q.get("networkmode", ""),
        extra_hosts=[h for raw in q.getall("extrahosts", []) for h in raw.split(",") if h],
        cache_from=[str(c) for c in cache_from],
        platform=q.get("platform", ""),
        memory=qint(request, "memory", 0),
        memory_swap=qint(request, "memswap", 0),
        cpu_shares=qint(request, "cpushares", 0),
        cpu_period=qint(request, "cpuperiod", 0),
        cpu_quota=qint(request, "cpuquota", 0),
        cpuset_cpus=q.get("cpusetcpus", ""),
        cpuset_mems=q.get("cpusetmems", ""),
        shm_size=qint(request, "shmsize", 0),
        remote=q.get("remote", ""),
        build_id=q.get("buildid", ""),
    )


async def build(request: web.Request) -> web.StreamResponse:
    options = build_options(request)
    target = await backend(request).rpc.request(
        subjects.BUILDER_RPC, BuildPrepare(options=options), UploadTarget, timeout=30.0
    )
    # The client's registry credentials (for FROM pulls) go only on the HTTP upload to the
    # builder, never over NATS.
    config = request.headers.get("X-Registry-Config", "")
    return await relay_upload(request, target.url, {"X-Registry-Config": config} if config else None)


async def cancel(request: web.Request) -> web.Response:
    build_id = request.query.get("id", "")
    if not build_id:
        raise InternalError("build ID not provided")  # dockerd's words and status (a plain error)
    await backend(request).rpc.request(subjects.BUILDER_RPC, BuildCancel(id=build_id), Done)
    return web.Response(status=200, content_type="application/json")


async def prune(request: web.Request) -> web.Response:
    """dockerd 20.10 prunes only BuildKit's cache here; the classic builder's cache is images
    (`docker image prune`), so there is never anything, as on dockerd without BuildKit builds."""
    return web.json_response({"CachesDeleted": None, "SpaceReclaimed": 0})

"""Image endpoints: list, inspect, remove, tag, load, import, pull; the rest say 501 (save, push
and login are in distribution.py)."""

from __future__ import annotations

from aiohttp import web
from berth_contracts import engine
from berth_contracts.base import Done
from berth_contracts.distribution import REGISTRY_AUTH_HEADER
from berth_contracts.errors import InvalidParameter, NotImplementedByBerth

from berth_gateway.backend import backend
from berth_gateway.params import qbool, qfilters
from berth_gateway.responses import json_response
from berth_gateway.routes.distribution import credentials_header
from berth_gateway.upload import relay_upload


async def list_images(request: web.Request) -> web.Response:
    filters = qfilters(request)
    # API < 1.25 had a `filter` parameter meaning a reference filter.
    if request.query.get("filter"):
        filters.setdefault("reference", []).append(request.query["filter"])
    reply = await backend(request).call(
        engine.ImageList(all=qbool(request, "all"), filters=filters), engine.ImageListing
    )
    return json_response(reply.items)


async def inspect(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        engine.ImageGet(ref=request.match_info["name"]), engine.ImageDetail
    )
    return json_response(reply.image)


async def remove(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        engine.ImageRemove(
            ref=request.match_info["name"],
            force=qbool(request, "force"),
            noprune=qbool(request, "noprune"),
        ),
        engine.ImageRemoved,
        reply_timeout=60.0,
    )
    return json_response(reply.items)


async def tag(request: web.Request) -> web.Response:
    repo = request.query.get("repo", "")
    if not repo:
        raise InvalidParameter("repository name must have at least one component")
    await backend(request).call(
        engine.ImageTag(
            ref=request.match_info["name"], repo=repo, tag=request.query.get("tag", "")
        ),
        Done,
    )
    return web.Response(status=201)


async def load(request: web.Request) -> web.StreamResponse:
    target = await backend(request).call(
        engine.ImageUpload(kind="load", quiet=qbool(request, "quiet", default=True)),
        engine.UploadTarget,
    )
    return await relay_upload(request, target.url)


async def create(request: web.Request) -> web.StreamResponse:
    """POST /images/create: import with fromSrc, pull with fromImage."""
    if request.query.get("fromImage"):
        return await pull(request)
    source = request.query.get("fromSrc", "")
    if not source:
        raise InvalidParameter("fromImage or fromSrc is required")
    if source != "-":
        raise NotImplementedByBerth(
            "importing from a URL is not supported by berth yet: send the archive in the body"
        )
    target = await backend(request).call(
        engine.ImageUpload(
            kind="import",
            repo=request.query.get("repo", ""),
            tag=request.query.get("tag", ""),
            message=request.query.get("message", ""),
            changes=request.query.getall("changes", []),
        ),
        engine.UploadTarget,
    )
    return await relay_upload(request, target.url)


async def pull(request: web.Request) -> web.StreamResponse:
    """Pull: errors found while resolving are HTTP errors, later ones errorDetail lines."""
    target = await backend(request).call(
        engine.ImagePull(
            ref=request.query["fromImage"],
            tag=request.query.get("tag", ""),
            platform=request.query.get("platform", ""),
            credentials=REGISTRY_AUTH_HEADER in request.headers,
        ),
        engine.UploadTarget,
        reply_timeout=100.0,
    )
    # The client's credentials go with the POST to lifecycle only (never over NATS).
    return await relay_upload(request, target.url, credentials_header(request))


async def prune(request: web.Request) -> web.Response:
    reply = await backend(request).call(
        engine.ImagePrune(filters=qfilters(request)), engine.ImagesPruned, reply_timeout=120.0
    )
    # moby sends null, not [], when nothing was deleted.
    return json_response(
        {"ImagesDeleted": reply.items or None, "SpaceReclaimed": reply.space_reclaimed}
    )

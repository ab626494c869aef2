"""Sharing images: `docker save`, `docker login` (POST /auth), `docker push`, and
GET /distribution/{name}/json. The engine names one of lifecycle's single-use URLs; the gateway
POSTs there and relays the answer. The client's credentials (X-Registry-Auth, the /auth body)
ride only on that POST: never on NATS, never logged, never in a span attribute.
"""

from __future__ import annotations

from aiohttp import web
from berth_contracts.distribution import (
    REGISTRY_AUTH_HEADER,
    DistributionInspect,
    ImagePush,
    ImageSave,
    RegistryLogin,
)
from berth_contracts.engine import UploadTarget

from berth_gateway.backend import backend
from berth_gateway.upload import relay_post

# Resolving at a registry may wait for its connect timeout: allow for it.
_REGISTRY_TIMEOUT = 100.0


def credentials_header(request: web.Request) -> dict[str, str]:
    """The client's X-Registry-Auth, passed on as it is (lifecycle decodes it)."""
    value = request.headers.get(REGISTRY_AUTH_HEADER, "")
    return {REGISTRY_AUTH_HEADER: value} if value else {}


async def save(request: web.Request) -> web.StreamResponse:
    names = [request.match_info["name"]] if "name" in request.match_info else request.query.getall("names", [])
    target = await backend(request).call(ImageSave(names=names), UploadTarget, reply_timeout=60.0)
    return await relay_post(request, target.url, None, {}, content_type="application/x-tar")


async def login(request: web.Request) -> web.StreamResponse:
    """POST /auth: the AuthConfig body goes to lifecycle's URL, which checks it at the registry."""
    target = await backend(request).call(RegistryLogin(), UploadTarget)
    return await relay_post(request, target.url, request.content, {"Content-Type": "application/json"})


async def inspect_distribution(request: web.Request) -> web.StreamResponse:
    target = await backend(request).call(
        DistributionInspect(ref=request.match_info["name"]), UploadTarget, reply_timeout=_REGISTRY_TIMEOUT
    )
    return await relay_post(request, target.url, None, credentials_header(request))


async def push(request: web.Request) -> web.StreamResponse:
    """No tag: every tag of the repository (`docker push --all-tags`; the CLI adds `latest`
    otherwise). The progress streams from lifecycle as pull's does."""
    tag = request.query.get("tag", "")
    target = await backend(request).call(
        ImagePush(ref=request.match_info["name"], tag=tag, all_tags=not tag), UploadTarget
    )
    return await relay_post(request, target.url, None, credentials_header(request))

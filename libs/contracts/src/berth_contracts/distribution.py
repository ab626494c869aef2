"""Sharing images: `docker save`, `docker push`, `docker login`, `GET /distribution/.../json`.

Each command is served by the engine (EngineRequest, forwarded) and by lifecycle
(LifecycleRequest) and answered with an UploadTarget: a single-use URL of lifecycle's HTTP
listener that the gateway POSTs to and relays the answer of. Bulk bytes (a saved archive) and
registry credentials (the client's `X-Registry-Auth`, the `POST /auth` body) travel only on
that HTTP request, never on NATS: credentials live for that one request and are never stored.
(The one exception is a swarm service's `--with-registry-auth`, which swarm.ServiceCreate
keeps with the service for its nodes' pulls, as dockerd does.)
"""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command

# The header the gateway forwards to lifecycle's URL with the client's credentials: Docker's
# base64url JSON AuthConfig, unchanged.
REGISTRY_AUTH_HEADER = "X-Registry-Auth"


class ImageSave(Command, frozen=True):
    """`docker save`: the names are resolved before the URL is handed out (a missing one is the
    reply's error); a POST to the URL streams the tar (moby 25's layout)."""

    names: list[str] = msgspec.field(default_factory=list)


class ImagePush(Command, frozen=True):
    """`docker push`: the local image is checked first; a POST to the URL (with the client's
    X-Registry-Auth header) pushes and streams Docker's JSON-lines progress."""

    ref: str
    tag: str = ""
    all_tags: bool = False


class RegistryLogin(Command, frozen=True):
    """`POST /auth`: the gateway POSTs the client's AuthConfig JSON body to the URL; the answer
    is Docker's `{"Status": "Login Succeeded", "IdentityToken": ...}` or an error."""


class DistributionInspect(Command, frozen=True):
    """`GET /distribution/{name}/json`: a POST to the URL (with X-Registry-Auth) answers the
    remote reference's descriptor and platforms."""

    ref: str

"""Resolving an image at its registry, through registry-proxy: manifests (index → platform),
with Docker's error words; blob downloads verified while they stream.

Every request goes to BERTH_REGISTRY_PROXY_URL as /v2/<path>/...?ns=<registry host>, so the
proxy picks the upstream (Docker Hub for docker.io names).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from anyio import to_thread
from berth_common.bodies import read_limited
from berth_contracts.errors import (
    BerthError,
    InternalError,
    InvalidParameter,
    NotFound,
    Unavailable,
)

from berth_lifecycle.content import IngestWriter
from berth_lifecycle.imageconfig import json_object
from berth_lifecycle.loader import HOST_ARCH, INDEX_TYPES
from berth_lifecycle.reference import Reference
from berth_lifecycle.regauth import AuthFailed, Credentials, RegistrySession

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
MAX_MANIFEST = 4 << 20
MAX_CONFIG = 8 << 20
CHUNK = 1 << 20
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=120)


def proxy_url() -> str:
    return os.environ.get("BERTH_REGISTRY_PROXY_URL", "").rstrip("/")


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = HOST_ARCH
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        if not text:
            return cls()
        parts = text.lower().split("/")
        if len(parts) > 3 or not all(parts):
            raise InvalidParameter(f'"{text}": unknown operating system or architecture: invalid argument')
        if len(parts) == 1:
            return cls(os=parts[0]) if parts[0] == "linux" else cls(architecture=parts[0])
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, plat: dict[str, Any]) -> bool:
        if plat.get("os") != self.os or plat.get("architecture") != self.architecture:
            return False
        return not self.variant or plat.get("variant", "") == self.variant


@dataclass(frozen=True)
class Resolved:
    ref: Reference  # what was asked for (tag or digest)
    digest: str  # of the manifest (or index) the reference names: the RepoDigest
    manifest: dict[str, Any]  # the image manifest for the platform
    config: dict[str, Any]  # descriptor
    layers: list[dict[str, Any]]  # descriptors


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _registry_error(body: bytes) -> tuple[str, str]:
    try:
        err = json.loads(body)["errors"][0]
        return str(err.get("code", "")), str(err.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return "", body.decode("utf-8", "replace").strip()[:300]


class RegistryClient:
    def __init__(self, base: str) -> None:
        if not base:
            raise Unavailable("registry-proxy is not configured (BERTH_REGISTRY_PROXY_URL): pulls need it")
        self.base = base
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT, auto_decompress=False)

    async def close(self) -> None:
        await self._session.close()

    def _url(self, ref: Reference, kind: str, what: str) -> str:
        return f"{self.base}/v2/{ref.path}/{kind}/{what}?ns={ref.domain}"

    async def _fetch(self, ref: Reference, kind: str, what: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        url = self._url(ref, kind, what)
        try:
            return await self._session.get(url, headers=headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f'Get "{url}": {exc or type(exc).__name__}') from None

    async def _get(self, ref: Reference, kind: str, what: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        resp = await self._fetch(ref, kind, what, headers)
        if resp.status < 400:
            return resp
        body = await read_limited(resp.content.iter_chunked(64 * 1024), 64 * 1024)
        resp.release()
        code, message = _registry_error(body)
        name = ref.familiar_name()
        if resp.status in (401, 403) or code in ("NAME_UNKNOWN", "UNAUTHORIZED", "DENIED"):
            # The registry's own words (errcode's "code: message"), as dockerd prints them.
            words = f"{code.lower()}: {message}" if code and message else ""
            raise NotFound(
                f"pull access denied for {name}, repository does not exist or may require 'docker login': "
                f"{words or 'denied: requested access to the resource is denied'}"
            )
        if resp.status == 404:
            if kind == "manifests":
                raise NotFound(f"manifest for {ref.familiar()} not found: manifest unknown: {message or 'manifest unknown'}")
            raise NotFound(f"blob {what} not found: {message}")
        if resp.status == 429:
            raise Unavailable(f"toomanyrequests: {message}")
        raise Unavailable(f"error from registry for {name}: {message or f'HTTP {resp.status}'}")

    async def manifest(self, ref: Reference, what: str) -> tuple[bytes, str]:
        resp = await self._get(ref, "manifests", what, {"Accept": MANIFEST_ACCEPT})
        async with resp:
            body = await read_limited(resp.content.iter_chunked(64 * 1024), MAX_MANIFEST)
            media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if len(body) > MAX_MANIFEST:
            raise InvalidParameter(f"manifest for {ref.familiar()} is larger than {MAX_MANIFEST} bytes")
        if what.startswith("sha256:") and _digest(body) != what:
            raise InvalidParameter(f"manifest verification failed for digest {what}")
        return body, media

    async def resolve(self, ref: Reference, platform: Platform) -> Resolved:
        what = ref.digest or ref.tag or "latest"
        body, media = await self.manifest(ref, what)
        top_digest = _digest(body)
        doc = json_object(body, "manifest")
        media = doc.get("mediaType") or media
        if media in INDEX_TYPES or "manifests" in doc:
            entries = [m for m in doc.get("manifests") or [] if platform.matches(m.get("platform") or {})]
            if not entries:
                raise NotFound(f"no matching manifest for {platform} in the manifest list entries")
            child = entries[0]["digest"]
            body, _ = await self.manifest(ref, child)
            doc = json_object(body, "manifest")
        if "layers" not in doc or not isinstance(doc.get("config"), dict):
            raise InvalidParameter(f"unsupported manifest format for {ref.familiar()}: {media}")
        return Resolved(ref, top_digest, doc, doc["config"], list(doc["layers"]))

    async def blob_bytes(self, ref: Reference, digest: str, limit: int = MAX_CONFIG) -> bytes:
        resp = await self._get(ref, "blobs", digest, {})
        async with resp:
            data = await read_limited(resp.content.iter_chunked(64 * 1024), limit)
        if len(data) > limit:
            raise InvalidParameter(f"blob {digest} is larger than {limit} bytes")
        if _digest(data) != digest:
            raise InvalidParameter(f"digest mismatch for {digest}: got {_digest(data)}")
        return data

    async def blob_into(
        self, ref: Reference, digest: str, writer: IngestWriter, progress: Callable[[int, int], Awaitable[None]]
    ) -> None:
        """Stream a blob into `writer` (hashing as it goes), then verify it (raises on mismatch)."""
        resp = await self._get(ref, "blobs", digest, {})
        async with resp:
            total = resp.content_length or 0
            try:
                pending = bytearray()
                async for chunk in resp.content.iter_any():
                    pending += chunk
                    # Socket reads are small: one worker-thread write per CHUNK, not per read.
                    if len(pending) >= CHUNK:
                        await to_thread.run_sync(writer.write, bytes(pending))
                        pending.clear()
                        await progress(writer.size, total)
                if pending:
                    await to_thread.run_sync(writer.write, bytes(pending))
                    await progress(writer.size, total)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise Unavailable(f"error pulling {digest}: {exc or type(exc).__name__}") from None
        if total and writer.size != total:
            raise Unavailable(f"error pulling {digest}: unexpected EOF after {writer.size} of {total} bytes")
        try:
            await to_thread.run_sync(writer.finish)
        except BerthError as exc:
            raise InvalidParameter(f"filesystem layer verification failed for digest {digest}: {exc.message}") from None


class DirectRegistryClient(RegistryClient):
    """The same reads, straight from the registry with the client's credentials (not through
    registry-proxy: a private image must never land in the proxy's shared cache)."""

    def __init__(self, host: str, credentials: Credentials) -> None:
        super().__init__("direct")
        self.registry = RegistrySession(host, credentials)

    async def close(self) -> None:
        await self.registry.close()
        await super().close()

    async def _fetch(self, ref: Reference, kind: str, what: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        if not self.registry.scopes:
            self.registry.scopes = [f"repository:{ref.path}:pull"]
        try:
            return await self.registry.request("GET", f"/v2/{ref.path}/{kind}/{what}", headers)
        except AuthFailed as exc:
            raise InternalError(exc.message) from None



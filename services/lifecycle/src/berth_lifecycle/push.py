"""`docker push`: the OCI Distribution push, from lifecycle straight to the registry.

Per layer (top first, as dockerd lists them): HEAD the blob (`Layer already exists`), else a
cross-repository mount from a repository of the same registry this blob is known to be in
(`Mounted from ...`), else a monolithic upload (POST, then PUT with the bytes: `Pushing`,
`Pushed`). Then the config and the manifest PUT: Docker schema 2 (OCI when a layer is zstd),
laid out as dockerd marshals it. The blobs pushed are the ones stored: a pulled layer goes out as
the same compressed blob; an uncompressed one (load, import) is gzipped once, and kept.
The client's credentials (X-Registry-Auth on the POST) live in one RegistrySession.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import web
from anyio import to_thread
from anyio.streams.memory import MemoryObjectSendStream
from berth_common.gotime import rfc3339nano
from berth_common.tokens import Tokens
from berth_contracts.distribution import REGISTRY_AUTH_HEADER, ImagePush
from berth_contracts.errors import BerthError, InternalError, InvalidParameter

from berth_lifecycle.content import ContentStore
from berth_lifecycle.images import Images
from berth_lifecycle.metadata import ImageRow
from berth_lifecycle.pull import _error, _first, _line, _short, stream_progress
from berth_lifecycle.reference import Reference, parse_normalized_named, parse_repo_tag
from berth_lifecycle.regauth import (
    AuthFailed,
    Credentials,
    RegistrySession,
    _registry_words,
    decode_registry_auth,
)
from berth_lifecycle.save import open_layer

log = logging.getLogger(__name__)
CHUNK = 1 << 20
PARALLEL_LAYERS = 3
PROGRESS_STEP = 512 * 1024
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def blob_kind(path: Any) -> str:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"\x1f\x8b"):
        return "gzip"
    return "zstd" if magic == b"\x28\xb5\x2f\xfd" else "tar"


def gzip_blob(content: ContentStore, digest: str) -> str:
    """Blocking: the gzip of an uncompressed layer blob, committed to the content store."""
    writer = content.writer()
    try:
        with open_layer(content.path(digest)) as src, gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as gz:  # type: ignore[call-overload]
            while chunk := src.read(CHUNK):
                gz.write(chunk)
        return writer.commit()
    finally:
        writer.abort()


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    media: str
    diff_id: str


def manifest_bytes(config: _Blob, layers: list[_Blob], oci: bool) -> bytes:
    """As dockerd marshals it (Go's MarshalIndent with three spaces, its field order)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": config.media, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": b.media, "size": b.size, "digest": b.digest} for b in layers],
    }
    return json.dumps(doc, indent=3).encode()


class Pusher:
    def __init__(self, images: Images) -> None:
        self.images = images
        self._pending: Tokens[ImagePush] = Tokens()
        self._compressing = anyio.Lock()

    def prepare(self, cmd: ImagePush, base_url: str) -> str:
        parse_normalized_named(cmd.ref)  # a bad reference is the RPC's error (HTTP 400)
        if cmd.tag:
            parse_repo_tag(cmd.ref, cmd.tag)
        return f"{base_url}/pushes/{self._pending.issue(cmd)}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cmd = self._pending.take(request.match_info["token"])
        if cmd is None:
            return web.json_response({"message": "push URL unknown, used or expired"}, status=404)
        await request.read()
        credentials = decode_registry_auth(request.headers.get(REGISTRY_AUTH_HEADER, ""))
        return await stream_progress(request, "push image", functools.partial(self._run, cmd, credentials))

    async def _run(self, cmd: ImagePush, credentials: Credentials, send: MemoryObjectSendStream[bytes]) -> None:
        async with send:
            try:
                await self._push(cmd, credentials, send)
            except AuthFailed as exc:
                await send.send(_error(exc.reason))
            except BerthError as exc:
                await send.send(_error(exc.message))
            except Exception as exc:  # noqa: BLE001 - the client must get an error line, not a cut
                log.exception("push of %s failed", cmd.ref)
                await send.send(_error(f"{type(exc).__name__}: {exc}"))

    async def _targets(self, repo: Reference, tag: str) -> list[tuple[str, ImageRow]]:
        meta = self.images.meta
        all_names = await to_thread.run_sync(meta.all_names)
        found: list[tuple[str, ImageRow]] = []
        for image_id, names in all_names.items():
            for full in names:
                named = parse_normalized_named(full)
                if named.name == repo.name and named.tag and (not tag or named.tag == tag):
                    row = await to_thread.run_sync(meta.get_image, image_id)
                    if row is not None:
                        found.append((named.tag, row))
        if not found:
            raise InvalidParameter(f"An image does not exist locally with the tag: {repo.familiar_name()}")
        return sorted(found, key=lambda t: t[0])

    async def _push(self, cmd: ImagePush, credentials: Credentials, send: MemoryObjectSendStream[bytes]) -> None:
        repo = parse_normalized_named(cmd.ref)
        await send.send(_line({"status": f"The push refers to repository [{repo.name}]"}))
        tag = "" if cmd.all_tags else (cmd.tag or repo.tag or "latest")
        targets = await self._targets(Reference(repo.name, "", ""), tag)
        session = RegistrySession(repo.domain, credentials, [f"repository:{repo.path}:pull,push"])
        try:
            for tag_name, row in targets:
                await self._push_image(session, repo, tag_name, row, send)
        finally:
            with anyio.CancelScope(shield=True):
                await session.close()

    async def _push_image(
        self, session: RegistrySession, repo: Reference, tag: str, row: ImageRow, send: MemoryObjectSendStream[bytes]
    ) -> None:
        if len(row.layer_blobs) != len(row.diff_ids):
            raise InternalError(f"the layer data of {row.id} is not stored: it cannot be pushed")
        for diff_id in reversed(row.diff_ids):
            await send.send(_line({"status": "Preparing", "progressDetail": {}, "id": _short(diff_id)}))
        blobs = await self._layer_blobs(row)
        oci = any(b.media == OCI_ZSTD for b in blobs)
        sources = await to_thread.run_sync(self._mount_sources, repo, [b.digest for b in blobs])
        mounts = {s for found in sources.values() for s in found}
        session.scopes = [f"repository:{repo.path}:pull,push", *(f"repository:{s}:pull" for s in sorted(mounts))]
        limiter = anyio.CapacityLimiter(PARALLEL_LAYERS)
        try:
            async with anyio.create_task_group() as tg:
                for blob in reversed(blobs):
                    tg.start_soon(self._push_layer, session, repo, blob, sources.get(blob.digest, []), send, limiter)
        except BaseExceptionGroup as group:
            raise _first(group) from None
        config = _Blob(row.id, len(row.config), OCI_CONFIG if oci else DOCKER_CONFIG, "")
        if not await self._exists(session, repo, config.digest):
            await self._upload(session, repo, config, None)
        manifest = manifest_bytes(config, blobs, oci)
        media = OCI_MANIFEST if oci else DOCKER_MANIFEST
        resp = await session.request(
            "PUT", f"/v2/{repo.path}/manifests/{tag}", {"Content-Type": media}, manifest
        )
        async with resp:
            if resp.status not in (200, 201):
                raise InternalError(_registry_words(await resp.read()) or f"manifest upload failed: HTTP {resp.status}")
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        await to_thread.run_sync(self.images.meta.set_name, f"{repo.name}@{digest}", row.id, rfc3339nano())
        await send.send(_line({"status": f"{tag}: digest: {digest} size: {len(manifest)}"}))
        aux = {"Tag": tag, "Digest": digest, "Size": len(manifest)}
        await send.send(_line({"progressDetail": {}, "aux": aux}))

    async def _layer_blobs(self, row: ImageRow) -> list[_Blob]:
        content = self.images.content
        async with self._compressing:  # one push compresses a layer; the others then see the gzip
            current = await to_thread.run_sync(self.images.meta.get_image, row.id)
            if current is None:
                raise InternalError(f"image {row.id} was deleted during the push")
            out: list[_Blob] = []
            for diff_id, digest in zip(current.diff_ids, current.layer_blobs, strict=True):
                kind = await to_thread.run_sync(blob_kind, content.path(digest))
                if kind == "tar":
                    # Compressed once and kept: the next push sends the same blob.
                    gz = await to_thread.run_sync(gzip_blob, content, digest)
                    async with self.images.lock:
                        await to_thread.run_sync(self.images.meta.replace_layer_blob, digest, gz)
                        await to_thread.run_sync(self.images.collect_blobs, [digest])
                    digest, kind = gz, "gzip"
                size = (await to_thread.run_sync(content.path(digest).stat)).st_size
                out.append(_Blob(digest, size, OCI_ZSTD if kind == "zstd" else DOCKER_GZIP, diff_id))
        if any(b.media == OCI_ZSTD for b in out):
            out = [_Blob(b.digest, b.size, OCI_GZIP if b.media == DOCKER_GZIP else b.media, b.diff_id) for b in out]
        return out

    def _mount_sources(self, repo: Reference, digests: list[str]) -> dict[str, list[str]]:
        """Blocking: per blob, other repositories of the same registry an image with it was
        pulled from or pushed to (its `name@digest` names)."""
        wanted = set(digests)
        out: dict[str, list[str]] = {}
        names = self.images.meta.all_names()
        for image in self.images.meta.images():
            blobs = wanted.intersection(image.layer_blobs)
            if not blobs:
                continue
            for full in names.get(image.id, []):
                if "@" not in full:
                    continue
                named = parse_normalized_named(full)
                if named.domain == repo.domain and named.path != repo.path:
                    for blob in blobs:
                        if named.path not in out.setdefault(blob, []):
                            out[blob].append(named.path)
        return out

    async def _exists(self, session: RegistrySession, repo: Reference, digest: str) -> bool:
        resp = await session.request("HEAD", f"/v2/{repo.path}/blobs/{digest}")
        async with resp:
            return resp.status == 200

    async def _push_layer(
        self,
        session: RegistrySession,
        repo: Reference,
        blob: _Blob,
        sources: list[str],
        send: MemoryObjectSendStream[bytes],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        short = _short(blob.diff_id)
        async with limiter:
            if await self._exists(session, repo, blob.digest):
                await send.send(_line({"status": "Layer already exists", "progressDetail": {}, "id": short}))
                return
            location = ""
            for source in sources[:3]:
                query = f"mount={blob.digest}&from={source}"
                resp = await session.request("POST", f"/v2/{repo.path}/blobs/uploads/?{query}")
                async with resp:
                    if resp.status == 201:
                        await send.send(_line({"status": f"Mounted from {source}", "progressDetail": {}, "id": short}))
                        return
                    if resp.status == 202:  # not mountable: an upload began instead, use it
                        location = resp.headers.get("Location", "")
                        break
            await self._upload(session, repo, blob, send, location)
        await send.send(_line({"status": "Pushed", "progressDetail": {}, "id": short}))

    async def _upload(
        self,
        session: RegistrySession,
        repo: Reference,
        blob: _Blob,
        send: MemoryObjectSendStream[bytes] | None,
        location: str = "",
    ) -> None:
        """Monolithic upload: POST (unless a mount attempt began one), PUT the bytes."""
        if not location:
            resp = await session.request("POST", f"/v2/{repo.path}/blobs/uploads/")
            async with resp:
                if resp.status != 202:
                    raise InternalError(_registry_words(await resp.read()) or f"blob upload failed: HTTP {resp.status}")
                location = resp.headers.get("Location", "")
        if not location:
            raise InternalError("the registry started an upload without a Location")
        if location.startswith("/"):
            location = session.base + location
        url = f"{location}{'&' if '?' in location else '?'}digest={blob.digest}"
        path = self.images.content.path(blob.digest)
        short = _short(blob.diff_id)

        async def body() -> Any:
            sent = last = 0
            f = await to_thread.run_sync(open, path, "rb")
            try:
                while chunk := await to_thread.run_sync(f.read, CHUNK):
                    sent += len(chunk)
                    yield chunk
                    if send is not None and (sent - last >= PROGRESS_STEP or sent == blob.size):
                        last = sent
                        detail = {"current": sent, "total": blob.size}
                        await send.send(_line({"status": "Pushing", "progressDetail": detail, "id": short}))
            finally:
                await to_thread.run_sync(f.close)

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        resp = await session.request("PUT", url, headers, body())
        async with resp:
            if resp.status not in (201, 204):
                raise InternalError(_registry_words(await resp.read()) or f"blob upload failed: HTTP {resp.status}")

"""`docker pull`: resolve at the registry (through registry-proxy), download the layers in
parallel into the content store (verified while streaming), unpack them, record the image.

ImagePull resolves the manifest first, so "no such repository/tag" is the RPC's error (an HTTP
error for the client); then it hands out a single-use URL on lifecycle's HTTP listener. A POST
there runs the pull and streams Docker's JSON progress lines; later errors are errorDetail lines.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import web
from anyio import to_thread
from anyio.streams.memory import MemoryObjectSendStream
from berth_common.tokens import Tokens
from berth_contracts.distribution import REGISTRY_AUTH_HEADER
from berth_contracts.engine import ImagePull
from berth_contracts.errors import BerthError, InvalidParameter
from berth_kit.tracing import extract
from opentelemetry import context, trace

from berth_lifecycle.events import image_event
from berth_lifecycle.images import Images, StagedBlob
from berth_lifecycle.layers import chain_ids
from berth_lifecycle.reference import DIGEST_RE, Reference, parse_normalized_named
from berth_lifecycle.regauth import decode_registry_auth
from berth_lifecycle.registry import (
    DirectRegistryClient,
    Platform,
    RegistryClient,
    Resolved,
    proxy_url,
)

log = logging.getLogger(__name__)
PARALLEL_LAYERS = 3
PROGRESS_STEP = 512 * 1024  # bytes between two Downloading lines of one layer


def pull_reference(cmd: ImagePull) -> Reference:
    """fromImage + tag as dockerd reads them: tag may be a tag or a digest."""
    ref = parse_normalized_named(cmd.ref)
    if cmd.tag:
        if DIGEST_RE.match(cmd.tag):
            return Reference(ref.name, "", cmd.tag)
        if ":" in cmd.tag or "@" in cmd.tag:
            raise InvalidParameter("invalid reference format")
        return Reference(ref.name, cmd.tag, "")
    return ref.with_default_tag()


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class _Pending:
    resolved: Resolved | None  # None: the client sent credentials; resolve once they arrive
    ref: Reference
    platform: Platform


async def stream_progress(
    request: web.Request, span_name: str, produce: Callable[[MemoryObjectSendStream[bytes]], Coroutine[Any, Any, None]]
) -> web.StreamResponse:
    """Answer 200 and stream the JSON lines `produce` sends (pull, push), in a span joined to the
    caller's trace; `produce` closes the stream when it is done."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    send, receive = anyio.create_memory_object_stream[bytes](64)
    traceparent = request.headers.get("traceparent", "")
    token = context.attach(extract({"traceparent": traceparent})) if traceparent else None
    try:
        with trace.get_tracer("berth-lifecycle").start_as_current_span(span_name):
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce, send)
                async with receive:
                    async for line in receive:
                        await response.write(line)
    finally:
        if token is not None:
            context.detach(token)
    await response.write_eof()
    return response


class Puller:
    def __init__(self, images: Images) -> None:
        self.images = images
        self._pending: Tokens[_Pending] = Tokens()

    async def prepare(self, cmd: ImagePull, base_url: str) -> str:
        ref = pull_reference(cmd)
        platform = Platform.parse(cmd.platform)
        resolved = None
        if not cmd.credentials:
            client = RegistryClient(proxy_url())
            try:
                resolved = await client.resolve(ref, platform)
            finally:
                await client.close()
        return f"{base_url}/pulls/{self._pending.issue(_Pending(resolved, ref, platform))}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.take(request.match_info["token"])
        if pending is None:
            return web.json_response({"message": "pull URL unknown, used or expired"}, status=404)
        await request.read()  # the body is empty
        client, resolved = await self._client(pending, request.headers.get(REGISTRY_AUTH_HEADER, ""))
        return await stream_progress(request, "pull image", functools.partial(self._run, resolved, client))

    async def _client(self, pending: _Pending, auth_header: str) -> tuple[RegistryClient, Resolved]:
        """Without credentials: through registry-proxy (resolved already). With them: straight
        to the registry, so a private image never enters the proxy's shared cache. Resolving
        here, before the answer starts, keeps its errors HTTP errors."""
        credentials = decode_registry_auth(auth_header)
        if pending.resolved is not None and not credentials.present:
            return RegistryClient(proxy_url()), pending.resolved
        client: RegistryClient = (
            DirectRegistryClient(pending.ref.domain, credentials) if credentials.present else RegistryClient(proxy_url())
        )
        try:
            return client, pending.resolved or await client.resolve(pending.ref, pending.platform)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await client.close()
            raise

    async def _run(self, resolved: Resolved, client: RegistryClient, send: MemoryObjectSendStream[bytes]) -> None:
        async with send:
            try:
                await self._pull(resolved, client, send)
            except BerthError as exc:
                await send.send(_error(exc.message))
                await self.images.collect_garbage()
            except Exception as exc:  # noqa: BLE001 - the client must get an error line, not a cut
                log.exception("pull of %s failed", resolved.ref)
                await send.send(_error(f"{type(exc).__name__}: {exc}"))
                await self.images.collect_garbage()
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                    await client.close()

    async def _pull(self, resolved: Resolved, client: RegistryClient, send: MemoryObjectSendStream[bytes]) -> None:
        ref = resolved.ref
        shown = ref.familiar()
        await send.send(_line({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest}))
        config_digest = str(resolved.config.get("digest", ""))
        names = [Reference(ref.name, ref.tag, "")] if ref.tag else []
        names.append(Reference(ref.name, "", resolved.digest))
        if await self._up_to_date(names, config_digest):
            await send.send(_line({"status": f"Digest: {resolved.digest}"}))
            await send.send(_line({"status": f"Status: Image is up to date for {shown}"}))
            return
        staged: list[StagedBlob | None] = [None] * len(resolved.layers)
        try:
            config = await client.blob_bytes(ref, config_digest)
            diff_ids = _diff_ids(config)
            chains = chain_ids(diff_ids) if len(diff_ids) == len(resolved.layers) else []
            for layer in resolved.layers:
                await send.send(_line({"status": "Pulling fs layer", "progressDetail": {}, "id": _short(layer["digest"])}))
            limiter = anyio.CapacityLimiter(PARALLEL_LAYERS)
            try:
                async with anyio.create_task_group() as tg:
                    for i, layer in enumerate(resolved.layers):
                        chain = chains[i] if chains else ""
                        tg.start_soon(self._layer, client, ref, layer, chain, i, staged, send, limiter)
            except BaseExceptionGroup as group:
                raise _first(group) from None
            blobs = [s for s in staged if s is not None]
            for layer in resolved.layers:
                size = int(layer.get("size") or 0)
                await send.send(_line({"status": "Extracting", "progressDetail": {"current": 0, "total": size}, "id": _short(layer["digest"])}))
            stored = await self.images.store(config, blobs, names)
            for layer in resolved.layers:
                await send.send(_line({"status": "Pull complete", "progressDetail": {}, "id": _short(layer["digest"])}))
        finally:
            # Shielded: a client that leaves cancels the pull, and its temp files must still go.
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                for s in staged:
                    if s is not None:
                        await to_thread.run_sync(s.writer.abort)
        await self.images.publish(image_event("pull", stored.image_id, shown))
        await send.send(_line({"status": f"Digest: {resolved.digest}"}))
        await send.send(_line({"status": f"Status: Downloaded newer image for {shown}"}))

    async def _up_to_date(self, names: list[Reference], config_digest: str) -> bool:
        meta = self.images.meta
        ids = [await to_thread.run_sync(meta.lookup_name, str(n)) for n in names]
        return all(i == config_digest for i in ids) and await to_thread.run_sync(meta.get_image, config_digest) is not None

    async def _layer(
        self,
        client: RegistryClient,
        ref: Reference,
        layer: dict[str, Any],
        chain: str,
        index: int,
        staged: list[StagedBlob | None],
        send: MemoryObjectSendStream[bytes],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        digest = str(layer.get("digest", ""))
        if not DIGEST_RE.match(digest):
            raise InvalidParameter(f"invalid layer digest {digest!r}")
        short = _short(digest)
        content = self.images.content
        writer = await to_thread.run_sync(content.writer, digest)
        staged[index] = StagedBlob(writer=writer, digest=digest)
        if chain and await self._have_layer(chain, digest):
            # Unpacked already: copy the local blob instead of downloading it again.
            await to_thread.run_sync(_copy_blob, content.path(digest), writer)
            await send.send(_line({"status": "Already exists", "progressDetail": {}, "id": short}))
            return
        async with limiter:
            last = 0

            async def progress(current: int, total: int) -> None:
                nonlocal last
                if current - last >= PROGRESS_STEP or current == total:
                    last = current
                    await send.send(_line({"status": "Downloading", "progressDetail": {"current": current, "total": total or int(layer.get("size") or 0)}, "id": short}))

            await client.blob_into(ref, digest, writer, progress)
        await send.send(_line({"status": "Verifying Checksum", "progressDetail": {}, "id": short}))
        await send.send(_line({"status": "Download complete", "progressDetail": {}, "id": short}))

    async def _have_layer(self, chain: str, digest: str) -> bool:
        snap = await to_thread.run_sync(self.images.meta.get_snapshot, chain)
        return snap is not None and snap.kind == "committed" and await to_thread.run_sync(self.images.content.exists, digest)


def _copy_blob(path: Any, writer: Any) -> None:
    with open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            writer.write(chunk)
    writer.finish()


def _diff_ids(config: bytes) -> list[str]:
    try:
        doc = json.loads(config)
        return [str(d) for d in doc["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter("invalid image config: no rootfs.diff_ids") from None


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed parallel download: a BerthError if there is one."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(group)
    return next((e for e in leaves if isinstance(e, BerthError)), leaves[0])


def _error(message: str) -> bytes:
    return _line({"errorDetail": {"message": message}, "error": message})

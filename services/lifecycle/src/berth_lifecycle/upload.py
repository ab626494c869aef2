"""The upload endpoint: bulk bytes of `docker load` / `docker import` arrive over HTTP, not NATS.

ImageUpload hands out a single-use URL (token valid 10 minutes); the gateway POSTs the archive
body there and relays the answer: Docker's JSON-lines progress, an errorDetail line on failure.
The body is streamed straight into the content store's ingest area from a worker thread that
pulls chunks from the event loop, so an archive is never held in memory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio
from aiohttp import StreamReader, web
from anyio import from_thread, to_thread
from berth_common.tokens import Tokens
from berth_contracts.engine import ImageUpload
from berth_contracts.errors import BerthError
from berth_kit.bulkhttp import BulkListener
from berth_kit.tracing import context_from_traceparent, extract, traceparent_of
from opentelemetry import trace

from berth_lifecycle import httperrors
from berth_lifecycle.archive import stage, stage_single
from berth_lifecycle.images import Images
from berth_lifecycle.importer import import_image
from berth_lifecycle.loader import load

log = logging.getLogger(__name__)

READ_STALL_TIMEOUT = 300.0  # a client that sends nothing for this long is given up on
DRAIN_LIMIT = 1 << 30  # after an error, read at most this much more of the body
CHUNK = 1 << 20
# Staging threads live as long as an upload; their own limit keeps the shared worker threads
# (SQLite and file work of every other command) available while big archives arrive.
MAX_CONCURRENT_UPLOADS = 8


@dataclass(frozen=True)
class _Pending:
    command: ImageUpload
    traceparent: str


class BodyReader:
    """A blocking file-like view of an aiohttp request body, for code in an anyio worker thread."""

    def __init__(self, content: StreamReader) -> None:
        self._content = content

    async def _read(self, n: int) -> bytes:
        with anyio.fail_after(READ_STALL_TIMEOUT):
            if n < 0:
                return await self._content.read()
            return await self._content.read(n)

    def read(self, n: int = -1, /) -> bytes:
        return from_thread.run(self._read, n)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def error_line(message: str) -> bytes:
    return _line({"errorDetail": {"message": message}, "error": message})


class UploadServer:
    def __init__(self, images: Images, listen: str = "127.0.0.1:0") -> None:
        self.images = images
        self.listener = BulkListener(listen, "BERTH_LIFECYCLE_ADVERTISE")
        self._pending: Tokens[_Pending] = Tokens()
        self._tracer = trace.get_tracer("berth-lifecycle")
        self._limiter: anyio.CapacityLimiter | None = None
        self.extra_posts: list[tuple[str, Any]] = []

    async def start(self) -> None:
        self._limiter = anyio.CapacityLimiter(MAX_CONCURRENT_UPLOADS)
        app = web.Application()
        httperrors.install(app)
        app.router.add_post("/uploads/{token}", self._handle)
        for path, handler in self.extra_posts:  # e.g. pull.py's /pulls/{token}
            app.router.add_post(path, handler)
        await self.listener.start(app)

    @property
    def base_url(self) -> str:
        return self.listener.base_url

    async def stop(self) -> None:
        await self.listener.stop()

    def issue(self, command: ImageUpload) -> str:
        token = self._pending.issue(_Pending(command, traceparent_of(trace.get_current_span())))
        return f"{self.base_url}/uploads/{token}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.take(request.match_info["token"])
        if pending is None:
            return web.json_response({"message": "upload URL unknown, used or expired"}, status=404)
        # The caller's trace context (the gateway sends it) wins over the one of ImageUpload.
        headers = {k.lower(): v for k, v in request.headers.items()}
        ctx = extract(headers) if "traceparent" in headers else context_from_traceparent(pending.traceparent)
        with self._tracer.start_as_current_span(f"upload {pending.command.kind}", context=ctx):
            lines = await self._process(pending.command, request)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for line in lines:
            await response.write(line)
        await response.write_eof()
        return response

    async def _process(self, command: ImageUpload, request: web.Request) -> list[bytes]:
        reader = BodyReader(request.content)
        content = self.images.content
        lines: list[bytes] = []
        try:
            if command.kind == "load":
                staged = await to_thread.run_sync(stage, reader, content, limiter=self._limiter)
                try:
                    async for msg in load(self.images, staged):
                        lines.append(_line(msg))
                finally:
                    await to_thread.run_sync(staged.discard)
            else:
                blob = await to_thread.run_sync(stage_single, reader, content, limiter=self._limiter)
                try:
                    lines.append(_line(await import_image(self.images, command, blob)))
                finally:
                    await to_thread.run_sync(blob.writer.abort)
        except BerthError as exc:
            lines.append(error_line(exc.message))
            await self._after_error(request)
        except Exception as exc:  # noqa: BLE001 - the client must get an error line, not a reset
            log.exception("%s failed", command.kind)
            lines.append(error_line(f"{type(exc).__name__}: {exc}"))
            await self._after_error(request)
        return lines

    async def _after_error(self, request: web.Request) -> None:
        # Layers unpacked for an image that was not stored are garbage now.
        await self.images.collect_garbage()
        # Read what the client is still sending, so it sees our answer instead of a reset.
        drained = 0
        with anyio.move_on_after(READ_STALL_TIMEOUT):
            while drained < DRAIN_LIMIT and (chunk := await request.content.read(CHUNK)):
                drained += len(chunk)

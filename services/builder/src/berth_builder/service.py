"""The builder service: BuildPrepare over NATS, the context over HTTP, the build stream back.

State lives under <data root>/builder: contexts/<random>/ holds one build's context (its tar, and
its files once a step needs them; 0700, removed when the build ends, whatever its outcome;
leftovers of a crash go at start).
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
from aiohttp import web
from anyio import to_thread
from berth_common.platforms import parse_platform
from berth_common.tokens import Tokens
from berth_contracts.base import Done
from berth_contracts.builder import BuildCancel, BuildOptions, BuildPrepare, UploadTarget
from berth_contracts.errors import BerthError, InvalidParameter, NotImplementedByBerth
from berth_kit.bulkhttp import BulkListener
from berth_kit.rpc import RpcServer
from berth_kit.tracing import extract
from opentelemetry import trace
from opentelemetry.context import Context

from berth_builder.build import (
    Build,
    BuildError,
    BuildInputs,
    Executors,
    json_line,
    load_dockerfile,
)
from berth_builder.context import (
    ContextError,
    is_archive_header,
    is_compressed,
    plain_tar,
    write_all,
)
from berth_builder.contextindex import BuildContext, ContextIndex, index_archive
from berth_builder.dockerignore import PatternError, excluded, read_patterns
from berth_builder.registryauth import REGISTRY_CONFIG_HEADER, RegistryAuth
from berth_builder.spool import Spool

log = logging.getLogger(__name__)

TOKEN_TTL = 600.0
READ_STALL_TIMEOUT = 300.0
CHUNK = 1 << 20
DEFAULT_DOCKERFILE = "Dockerfile"


def data_root() -> Path:
    return Path(os.environ.get("BERTH_DATA_ROOT", "/var/lib/berth")) / "builder"


def http_listen() -> str:
    return os.environ.get("BERTH_BUILDER_HTTP", "127.0.0.1:0")


@dataclass(frozen=True)
class _Pending:
    options: BuildOptions


def validate(options: BuildOptions) -> None:
    """Refuse, before any byte is sent, what the classic builder here does not do."""
    if options.remote:
        raise NotImplementedByBerth(
            "berth's builder takes the context as the request body only (no remote URL)"
        )
    if options.platform:
        try:
            parse_platform(options.platform)
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None


class ContextStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "contexts"

    def recover(self) -> None:
        """Blocking: remove the contexts of builds a crash interrupted."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        for entry in self.root.iterdir():
            shutil.rmtree(entry, ignore_errors=True)

    def new_dir(self) -> str:
        return tempfile.mkdtemp(dir=self.root, prefix="ctx-")


def prepare_context(spool: Spool, ctx_dir: str, options: BuildOptions) -> tuple[BuildContext, bytes]:
    """Blocking: index the body (a tar, or a bare Dockerfile made into a one-file tar) as it
    arrives; return the build's context and the Dockerfile's bytes, with moby's .dockerignore
    removals applied. Nothing is extracted yet (contextindex.py)."""
    name = options.dockerfile or DEFAULT_DOCKERFILE
    with spool.reader() as body:
        head = body.peek(512)
        if is_archive_header(head) and not is_compressed(head):  # read while it arrives
            index = index_archive(spool.path, stream=body)
            spool.complete()  # what follows the tar's end-of-archive may still be on its way
        elif is_archive_header(head):
            spool.complete()
            index = index_archive(plain_tar(spool.path))
        else:
            spool.complete()
            index, name = _dockerfile_alone(spool.path, ctx_dir), DEFAULT_DOCKERFILE
    path = index.resolve(name)
    if index.kind(path) != "file" and name == DEFAULT_DOCKERFILE:
        path = index.resolve(name.lower())
    if index.kind(path) != "file":
        raise ContextError(f"Cannot locate specified Dockerfile: {name}")
    context = BuildContext(index, os.path.join(ctx_dir, "root"))
    os.mkdir(context.root, 0o755)
    text = index.read(path)
    _remove_ignored(context, name)
    return context, text


def _dockerfile_alone(path: str, ctx_dir: str) -> ContextIndex:
    """A bare Dockerfile for a body: the context is that file alone, with no archive sums."""
    tar_path = os.path.join(ctx_dir, "dockerfile.tar")
    with tarfile.open(tar_path, "x") as tar:
        info = tar.gettarinfo(path, arcname=DEFAULT_DOCKERFILE)
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
        with open(path, "rb") as f:
            tar.addfile(info, f)
    os.unlink(path)
    return index_archive(tar_path, summed=False)


def _remove_ignored(context: BuildContext, dockerfile: str) -> None:
    ignore = context.index.resolve(".dockerignore")
    if context.index.kind(ignore) != "file":
        return
    patterns = read_patterns(context.index.read(ignore))
    for rel in (".dockerignore", dockerfile):
        try:
            matched = excluded(rel, patterns)
        except PatternError:
            matched = False
        if matched:
            context.ignore(rel)


class Builder:
    def __init__(self, root: Path, executors: Executors, listen: str = "127.0.0.1:0") -> None:
        self.contexts = ContextStore(root)
        self.executors = executors
        self.listener = BulkListener(listen, "BERTH_BUILDER_ADVERTISE")
        self._pending: Tokens[_Pending] = Tokens(TOKEN_TTL)
        self._running: dict[str, list[anyio.CancelScope]] = {}  # buildid -> builds running

    async def start(self) -> None:
        await to_thread.run_sync(self.contexts.recover)
        app = web.Application(client_max_size=0)
        app.router.add_post("/builds/{token}", self._handle)
        # A client that goes away cancels its build: the running step's container is removed.
        await self.listener.start(app, handler_cancellation=True)

    @property
    def base_url(self) -> str:
        return self.listener.base_url

    async def stop(self) -> None:
        await self.listener.stop()

    async def build_prepare(self, cmd: BuildPrepare) -> UploadTarget:
        validate(cmd.options)
        return UploadTarget(url=f"{self.base_url}/builds/{self._pending.issue(_Pending(cmd.options))}")

    async def build_cancel(self, cmd: BuildCancel) -> Done:
        for scope in self._running.get(cmd.id, []):
            scope.cancel()
        return Done()

    def register(self, server: RpcServer) -> None:
        server.handle(BuildPrepare, self.build_prepare)
        server.handle(BuildCancel, self.build_cancel)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.take(request.match_info["token"])
        if pending is None:
            return web.json_response({"message": "upload URL unknown, used or expired"}, status=404)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        ctx_dir = await to_thread.run_sync(self.contexts.new_dir)
        scope = anyio.CancelScope()
        if build_id := pending.options.build_id:
            self._running.setdefault(build_id, []).append(scope)
        # One build is one trace: the gateway's request span is its parent.
        parent = extract(dict(request.headers))
        try:
            spool, prepared = Spool(os.path.join(ctx_dir, "body")), _Prepared()
            received: BerthError | None = None
            async with anyio.create_task_group() as tg:  # the context is indexed as it arrives
                tg.start_soon(prepared.run, spool, ctx_dir, pending.options, parent)
                try:
                    await self._spool(request, spool)
                except BerthError as exc:
                    received = exc
            if received is not None:
                return web.json_response({"message": received.message}, status=400)
            await response.prepare(request)
            try:
                with (
                    trace.get_tracer("berth-builder").start_as_current_span("docker build", context=parent),
                    scope,
                ):
                    registry_auth = RegistryAuth.from_header(request.headers.get(REGISTRY_CONFIG_HEADER, ""))
                    await self._build(pending.options, registry_auth, prepared, response)
                if scope.cancelled_caught:  # POST /build/cancel; the step's container is gone
                    await response.write(_error_line("context canceled"))
            except (BuildError, ContextError) as exc:
                await response.write(_error_line(str(exc), getattr(exc, "code", 0)))
            except BerthError as exc:  # an engine error not already in a step's words
                await response.write(_error_line(exc.message))
            except Exception as exc:  # noqa: BLE001 - the client must get an error line, not a reset
                log.exception("build failed")
                await response.write(_error_line(f"{type(exc).__name__}: {exc}"))
        finally:
            if build_id:
                self._running[build_id].remove(scope)
                if not self._running[build_id]:
                    del self._running[build_id]
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(shutil.rmtree, ctx_dir, True)
        await response.write_eof()
        return response

    async def _spool(self, request: web.Request, spool: Spool) -> None:
        """The body to disk (bulk bytes never sit in memory); a full disk fails cleanly."""
        whole = False
        try:
            while True:
                with anyio.fail_after(READ_STALL_TIMEOUT):
                    chunk = await request.content.read(CHUNK)
                if not chunk:
                    break
                await to_thread.run_sync(write_all, spool.fd, chunk)
                spool.wrote(len(chunk))
            whole = True
        except OSError as exc:
            raise InvalidParameter(f"failed to receive the build context: {exc.strerror}") from None
        finally:
            spool.close(failed=not whole)

    async def _build(
        self,
        options: BuildOptions,
        registry_auth: RegistryAuth,
        prepared: _Prepared,
        response: web.StreamResponse,
    ) -> None:
        context, text = prepared.result()
        dockerfile = load_dockerfile(text, options)
        executor = self.executors.for_build(BuildInputs(options, context, registry_auth))
        held: list[bytes] = []  # -q: the output, sent only if the build fails (as dockerd)
        try:
            async for message in Build(dockerfile, options, executor).run():
                if not options.quiet:
                    await response.write(json_line(message))
                elif "stream" in message:
                    held.append(json_line(message))
                elif "aux" in message:
                    image_id = str(message["aux"]["ID"])
        except (BuildError, ContextError, BerthError):
            for line in held:
                await response.write(line)
            raise
        if options.quiet:
            await response.write(json_line({"stream": image_id + "\n"}))


class _Prepared:
    """prepare_context's outcome, worked out while the body arrives; its error is raised where
    the build begins, so the client gets it as the build's error line."""

    def __init__(self) -> None:
        self._result: tuple[BuildContext, bytes] | None = None
        self._error: Exception | None = None

    async def run(self, spool: Spool, ctx_dir: str, options: BuildOptions, parent: Context) -> None:
        """Index the context; its span, "build context", lasts from the body's first byte to the
        index (the upload included: the two overlap)."""
        with trace.get_tracer("berth-builder").start_as_current_span("build context", context=parent) as span:
            try:
                self._result = await to_thread.run_sync(prepare_context, spool, ctx_dir, options)
            except Exception as exc:  # noqa: BLE001 - raised again by result()
                self._error = exc
                span.set_attribute("error", str(exc))

    def result(self) -> tuple[BuildContext, bytes]:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _error_line(message: str, code: int = 0) -> bytes:
    detail: dict[str, object] = {"code": code, "message": message} if code else {"message": message}
    return json_line({"errorDetail": detail, "error": message})

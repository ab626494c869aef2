"""`docker cp` on lifecycle's side: ArchiveOpen, and the single-use /archives/{token} URLs that
stream a tar out of (get) or into (put) a container through the confined archive_child."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web
from anyio.abc import Process
from berth_common.tokens import Tokens
from berth_contracts.archives import ArchiveOpen, ArchiveOpened, PathStat
from berth_contracts.errors import BerthError, Conflict, InternalError, InvalidParameter, NotFound

from berth_lifecycle.procroot import EXIT_NOT_THAT_CONTAINER, NotThatContainer, open_container_root
from berth_lifecycle.snapshots import Snapshotter
from berth_lifecycle.tarlimits import TarLimits
from berth_lifecycle.upload import UploadServer

log = logging.getLogger(__name__)

STAT_TIMEOUT = 60.0
STALL_TIMEOUT = 300.0  # a transfer with no progress for this long is given up
CHUNK = 1 << 20


@dataclass(frozen=True)
class _Pending:
    spec: dict[str, Any]
    cmd: ArchiveOpen


def _child_argv(spec: dict[str, Any]) -> list[str]:
    # -I: nothing from the environment or the working directory on the import path.
    return [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)]


def child_error(code: int, stderr: str, cmd: ArchiveOpen) -> BerthError:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {code}"
    if code == 2:
        return NotFound(f"Could not find the file {cmd.path} in container {cmd.container_id}")
    if code in (3, 4):
        return InvalidParameter(text)
    if code == EXIT_NOT_THAT_CONTAINER:
        return _not_that_container(cmd, text)
    if "Read-only file system" in text:
        return Conflict(f"container rootfs is marked read-only: {text}")
    return InternalError(f"docker cp: {text}")


def _not_that_container(cmd: ArchiveOpen, why: str) -> BerthError:
    return Conflict(f"container {cmd.container_id} is not running as pid {cmd.pid}: {why}")


def _check_pid(cmd: ArchiveOpen, rootfs: dict[str, Any]) -> None:
    try:
        os.close(open_container_root(cmd.pid, rootfs))
    except NotThatContainer as exc:
        raise _not_that_container(cmd, str(exc)) from None


def _kill(proc: Process) -> None:
    """Kill the child if it still runs: one that already exited (its status is the error being
    raised) must not turn that error into a ProcessLookupError."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


class ContainerFiles:
    def __init__(self, snapshots: Snapshotter, uploads: UploadServer, scratch: Path) -> None:
        self.snapshots = snapshots
        self.uploads = uploads  # its HTTP listener serves /archives/{token} too
        self.scratch = scratch  # mount point of stopped containers' roots, in the child's own ns
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._pending: Tokens[_Pending] = Tokens()
        uploads.extra_posts.append(("/archives/{token}", self.handle))

    async def _spec(self, cmd: ArchiveOpen) -> dict[str, Any]:
        [root] = await self.snapshots.mounts(cmd.key)
        spec: dict[str, Any] = {
            "mode": cmd.mode,
            "path": cmd.path,
            "no_overwrite": cmd.no_overwrite_dir_non_dir,
            "make_parents": cmd.make_parents,
            "parents_owner": list(cmd.parents_owner),
            "pid": max(cmd.pid, 0),
            "rootfs": {"type": root.type, "source": root.source, "options": list(root.options)},
            "scratch": str(self.scratch),
            "limits": dataclasses.asdict(TarLimits.from_env()),
        }
        if cmd.pid > 0:
            # Refused here already, so that a put fails before its upload; the child checks
            # again right before its chroot (the process may have changed since).
            await anyio.to_thread.run_sync(_check_pid, cmd, spec["rootfs"])
        else:
            spec["mounts"] = [
                {"source": m.source, "target": m.target, "readonly": m.readonly} for m in cmd.mounts
            ]
        return spec

    async def _stat(self, spec: dict[str, Any], cmd: ArchiveOpen) -> PathStat:
        with anyio.fail_after(STAT_TIMEOUT):
            res = await anyio.run_process(
                _child_argv({**spec, "mode": "stat"}), check=False, cwd="/"
            )
        if res.returncode != 0:
            raise child_error(res.returncode, res.stderr.decode(errors="replace"), cmd)
        return PathStat(**json.loads(res.stdout))

    async def open(self, cmd: ArchiveOpen) -> ArchiveOpened:
        if not self.uploads.base_url:
            raise InternalError("the archive listener is not running")
        spec = await self._spec(cmd)
        stat = None if cmd.mode == "put" else await self._stat(spec, cmd)
        if cmd.mode == "stat":
            return ArchiveOpened(stat=stat)
        token = self._pending.issue(_Pending(spec, cmd))
        return ArchiveOpened(stat=stat, url=f"{self.uploads.base_url}/archives/{token}")

    async def open_export(self, key: str) -> str:
        """`docker export`: a single-use URL streaming the container's whole filesystem.

        The child mounts a read-only view (the writable layer as the top lowerdir, no upper or
        work dir), so a running container's own mount is left alone and its volumes are not
        included, as in dockerd's export."""
        if not self.uploads.base_url:
            raise InternalError("the archive listener is not running")
        [root] = await self.snapshots.mounts(key)
        if root.type == "overlay":
            opts = {o.partition("=")[0]: o.partition("=")[2] for o in root.options}
            options = [f"lowerdir={opts['upperdir']}:{opts['lowerdir']}"]
        else:
            options = list(root.options)
        spec = {"mode": "export", "path": "/", "proc_root": "", "scratch": str(self.scratch),
                "rootfs": {"type": root.type, "source": root.source, "options": options}, "mounts": []}  # fmt: skip
        cmd = ArchiveOpen(key=key, path="/", container_id=key, mode="get")
        return f"{self.uploads.base_url}/archives/{self._pending.issue(_Pending(spec, cmd))}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.take(request.match_info["token"])
        if pending is None:
            return web.json_response(
                {"message": "archive URL unknown, used or expired"}, status=404
            )
        try:
            if pending.spec["mode"] in ("get", "export"):
                return await self._get(request, pending)
            return await self._put(request, pending)
        except BerthError as exc:
            return web.json_response({"message": exc.message}, status=exc.http_status)

    async def _get(self, request: web.Request, pending: _Pending) -> web.StreamResponse:
        async with await anyio.open_process(_child_argv(pending.spec), cwd="/") as proc:
            assert proc.stdout is not None
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
            await response.prepare(request)
            try:
                while True:
                    with anyio.fail_after(STALL_TIMEOUT):
                        try:
                            chunk = await proc.stdout.receive(CHUNK)
                        except anyio.EndOfStream:
                            break
                    await response.write(chunk)
                await self._wait(proc, pending)
            except BaseException:
                _kill(proc)
                raise
            await response.write_eof()
            return response

    async def _put(self, request: web.Request, pending: _Pending) -> web.StreamResponse:
        async with await anyio.open_process(_child_argv(pending.spec), cwd="/") as proc:
            assert proc.stdin is not None
            try:
                while True:
                    with anyio.fail_after(STALL_TIMEOUT):
                        chunk = await request.content.read(CHUNK)
                    if not chunk:
                        break
                    try:
                        await proc.stdin.send(chunk)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        break  # the child stopped reading: its exit status says why
                await proc.stdin.aclose()
                await self._wait(proc, pending)
            except BaseException:
                _kill(proc)
                raise
        return web.json_response({}, status=200)

    async def _wait(self, proc: Process, pending: _Pending) -> None:
        with anyio.fail_after(STALL_TIMEOUT):
            code = await proc.wait()
        if code != 0:
            stderr = b""
            if proc.stderr is not None:
                with anyio.move_on_after(5):
                    stderr = await proc.stderr.receive(65536)
            raise child_error(code, stderr.decode(errors="replace"), pending.cmd)

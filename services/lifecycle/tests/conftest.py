"""Shared helpers for lifecycle tests."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

import pytest


class TarMaker:
    """Builds tars entry by entry, including entries no sane tool would write."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, info: tarfile.TarInfo, data: bytes | None = None) -> TarMaker:
        info.mtime = 1_600_000_000
        if data is not None:
            info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return self

    def file(self, name: str, data: bytes = b"x", mode: int = 0o644, uid: int = 0, gid: int = 0,
             xattrs: dict[str, str] | None = None) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid = mode, uid, gid
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        return self._add(info, data)

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, gid
        return self._add(info)

    def symlink(self, name: str, target: str) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        return self._add(info)

    def hardlink(self, name: str, target: str) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        return self._add(info)

    def device(self, name: str, kind: bytes, major: int, minor: int) -> TarMaker:
        info = tarfile.TarInfo(name)
        info.type, info.devmajor, info.devminor, info.mode = kind, major, minor, 0o600
        return self._add(info)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


@pytest.fixture
def tar_maker() -> Callable[[], TarMaker]:
    return TarMaker


# --- a lifecycle service on a real nats-server, in-process ------------------------------------------

import json  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import aiohttp  # noqa: E402
import anyio  # noqa: E402
from anyio import to_thread  # noqa: E402
from berth_contracts import subjects  # noqa: E402
from berth_contracts.base import Command, Reply  # noqa: E402
from berth_contracts.codec import decode  # noqa: E402
from berth_contracts.docker import Event  # noqa: E402
from berth_contracts.engine import ImageUpload, UploadTarget  # noqa: E402
from berth_contracts.lifecycle import LifecycleRequest  # noqa: E402
from berth_kit.nats_conn import connect  # noqa: E402
from berth_kit.rpc import RpcClient, RpcServer  # noqa: E402
from berth_kit.testing import nats_server  # noqa: E402
from berth_lifecycle.events import nats_publisher  # noqa: E402
from berth_lifecycle.service import Lifecycle  # noqa: E402
from nats.aio.client import Client as NATS  # noqa: E402

R = TypeVar("R", bound=Reply)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with nats_server() as url:
        yield url


@dataclass
class Harness:
    nc: NATS
    client: RpcClient
    lifecycle: Lifecycle
    subject: str
    events: list[Event]
    root: Path
    arrived: anyio.Event

    def add_event(self, event: Event) -> None:
        self.events.append(event)
        self.arrived.set()

    async def call(self, command: Command, reply_type: type[R]) -> R:
        return await self.client.request(self.subject, command, reply_type, timeout=30)

    async def upload(self, command: ImageUpload, body: bytes, chunk: int = 256 * 1024) -> list[dict[str, Any]]:
        """What the gateway does: ask for a URL, POST the body chunked, read JSON lines."""
        target = await self.call(command, UploadTarget)

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), chunk):
                yield body[i : i + chunk]

        async with aiohttp.ClientSession() as session:
            async with session.post(target.url, data=chunks()) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["Content-Type"] == "application/json"
                text = await resp.text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def wait_events(self, count: int) -> list[Event]:
        with anyio.fail_after(10):
            while len(self.events) < count:
                await self.arrived.wait()
                self.arrived = anyio.Event()
        return self.events


@pytest.fixture
async def harness(tmp_path: Path, nats_url: str) -> AsyncIterator[Harness]:
    nc = await connect(nats_url, "lifecycle-test")
    box: list[Harness] = []

    async def on_event(msg: Any) -> None:
        if box:
            box[0].add_event(decode(msg.data, Event))

    await nc.subscribe(subjects.docker_events("image", "*"), cb=on_event)
    lc = await to_thread.run_sync(Lifecycle.open, tmp_path / "lifecycle", nats_publisher(nc))
    await lc.uploads.start()
    node = f"test-{uuid.uuid4().hex[:8]}"
    subject = subjects.lifecycle_rpc(node)
    async with anyio.create_task_group() as tg:
        server = RpcServer(nc, subject, LifecycleRequest, queue=subjects.LIFECYCLE_QUEUE)
        lc.register(server)
        await server.start(tg)
        box.append(Harness(nc, RpcClient(nc), lc, subject, [], tmp_path / "lifecycle", anyio.Event()))
        try:
            yield box[0]
        finally:
            await server.stop()
            await lc.uploads.stop()
            tg.cancel_scope.cancel()
    lc.close()
    await nc.close()

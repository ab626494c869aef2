"""Real services as subprocesses against a real nats-server, for the engine's service tests."""

from __future__ import annotations

import contextlib
import signal
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
from berth_contracts import subjects
from berth_contracts.base import Command, Done, Reply
from berth_contracts.engine import (
    ContainerList,
    ContainerListing,
    ContainerRemove,
    ImageUpload,
    UploadTarget,
)
from berth_kit.nats_conn import connect
from berth_kit.rpc import RpcClient
from berth_kit.testing import ServiceProcess, nats_server

R = TypeVar("R", bound=Reply)
NODE = "enginetest"

MODULES = {
    "berth-engine": "berth_engine",
    "berth-lifecycle": "berth_lifecycle",
    "berth-runtime-agent": "berth_agent",
}


class Services:
    """Starts, stops and talks to berth services sharing one NATS and one set of roots."""

    def __init__(self, nats_url: str, root: Path) -> None:
        self.nats_url = nats_url
        self.root = root
        self.procs: dict[str, ServiceProcess] = {}
        self.env = dict(
            BERTH_NODE=NODE,
            BERTH_DATA_ROOT=str(root / "data"),
            BERTH_EXEC_ROOT=str(root / "exec"),
            BERTH_ENGINE_RECONCILE_INTERVAL="1",
            BERTH_LOG_LEVEL="INFO",
        )

    def start(self, service: str, wait: bool = True) -> None:
        proc = ServiceProcess(
            MODULES[service], service, self.nats_url, self.env, self.root / f"{service}.log"
        )
        self.procs[service] = proc
        proc.start(wait=wait)

    def wait_ready(self, service: str, deadline: float = 30.0) -> None:
        self.procs[service].wait_ready(deadline)

    def stop(self, service: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(service, None)
        if proc is not None:
            proc.stop(sig)

    def stop_all(self) -> None:
        for service in list(self.procs):
            self.stop(service)

    def log(self, service: str) -> str:
        path = self.root / f"{service}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- talking to them -------------------------------------------------------------------------

    def call(
        self,
        subject: str,
        command: Command,
        reply: type[R],
        *,
        timeout: float = 30.0,
        attempts: int = 3,
    ) -> R:
        async def go() -> R:
            nc = await connect(self.nats_url, "engine-tests", connect_deadline=5)
            try:
                return await RpcClient(nc).request(
                    subject, command, reply, timeout=timeout, attempts=attempts
                )
            finally:
                await nc.close()

        return anyio.run(go)

    def engine(self, command: Command, reply: type[R], *, timeout: float = 60.0) -> R:
        return self.call(subjects.ENGINE_RPC, command, reply, timeout=timeout)

    def load_image(self, archive: bytes) -> str:
        target = self.engine(ImageUpload(kind="load", quiet=True), UploadTarget)
        req = urllib.request.Request(
            target.url, data=archive, method="POST", headers={"Content-Type": "application/x-tar"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback URL
            body = resp.read().decode()
        if "errorDetail" in body:
            raise RuntimeError(body)
        return body


@contextlib.contextmanager
def services_running(root: Path, *names: str, image: bytes) -> Iterator[Services]:
    """`names` started in order on a fresh nats-server, `image` (a docker-save archive) loaded;
    afterwards every service stopped, and, with an agent, every container removed first (runc
    state must not outlive the test)."""
    with nats_server() as url:
        services = Services(url, root)
        try:
            for name in names:
                services.start(name)
            services.load_image(image)
            yield services
        finally:
            if "berth-runtime-agent" in names:
                for cid in _all_ids(services):
                    try:
                        services.engine(ContainerRemove(ref=cid, force=True), Done)
                    except Exception:  # noqa: BLE001 - best effort clean-up of runc state
                        pass
            services.stop_all()


def _all_ids(svc: Services) -> list[str]:
    try:
        return [c.id for c in svc.engine(ContainerList(all=True), ContainerListing).items]
    except Exception:  # noqa: BLE001
        return []


def collect(
    nats_url: str, subject: str, during: Callable[[], Any], settle: float = 0.3
) -> list[bytes]:
    """Messages published on subject while `during` runs (in a worker thread)."""

    async def go() -> list[bytes]:
        nc = await connect(nats_url, "engine-tests-events", connect_deadline=5)
        got: list[bytes] = []
        try:
            sub = await nc.subscribe(subject)
            await nc.flush()
            await anyio.to_thread.run_sync(during)
            await anyio.sleep(settle)
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.2)
                except Exception:  # noqa: BLE001 - nats TimeoutError: nothing more queued
                    break
                got.append(msg.data)
        finally:
            await nc.close()
        return got

    return anyio.run(go)

"""Running a service: uvloop, one task group, NATS, and a graceful stop on SIGTERM/SIGINT.

A service's main coroutine receives a ServiceContext, starts what it serves into ctx.tg,
registers what must be closed at the end with ctx.on_stop, and returns. The kit then waits for
a signal; its servers stop taking requests and answer those in flight; the on_stop cleanups run
(last registered first, each shielded and bounded); NATS drains; what is left is cancelled.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from berth_contracts import subjects
from berth_contracts.base import Ping
from nats.aio.client import Client as NATS
from opentelemetry.sdk.trace import TracerProvider

from berth_kit.nats_conn import connect
from berth_kit.node import default_node
from berth_kit.rpc import RpcClient, RpcServer
from berth_kit.tracing import setup_tracing

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 10.0
Cleanup = Callable[[], Awaitable[None]]


@dataclass
class ServiceContext:
    name: str  # OpenTelemetry service.name, e.g. "berth-engine"
    node: str
    nc: NATS
    tg: TaskGroup
    rpc: RpcClient
    tracer_provider: TracerProvider
    stopping: anyio.Event = field(default_factory=anyio.Event)
    servers: list[RpcServer] = field(default_factory=list)
    cleanups: list[tuple[Cleanup, float]] = field(default_factory=list)

    def server(self, subject: str, request_type: object, *, queue: str = "", limit: int = 64) -> RpcServer:
        srv = RpcServer(
            self.nc, subject, request_type, queue=queue, limit=limit, tracer_name=self.name, node=self.node
        )
        self.servers.append(srv)
        return srv

    def on_stop(self, cleanup: Cleanup, timeout: float = 10.0) -> None:
        """Run cleanup when the service stops, after its requests are answered, while NATS is
        still connected; also when main fails after registering it."""
        self.cleanups.append((cleanup, timeout))

    async def run_cleanups(self) -> None:
        while self.cleanups:
            cleanup, timeout = self.cleanups.pop()
            with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
                try:
                    await cleanup()
                except Exception:  # noqa: BLE001 - the other cleanups still run
                    log.exception("%s: cleanup %s failed", self.name, cleanup)


def nats_url() -> str:
    return os.environ.get("BERTH_NATS_URL", "nats://127.0.0.1:4222")


def run_service(name: str, main: Callable[[ServiceContext], Awaitable[None]]) -> None:
    logging.basicConfig(
        level=os.environ.get("BERTH_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    anyio.run(_run, name, main, backend="asyncio", backend_options={"use_uvloop": True})


async def _run(name: str, main: Callable[[ServiceContext], Awaitable[None]]) -> None:
    provider = setup_tracing(name)
    nc = await connect(nats_url(), name)
    ctx: ServiceContext | None = None
    try:
        async with anyio.create_task_group() as tg:
            ctx = ServiceContext(
                name=name,
                node=default_node(),
                nc=nc,
                tg=tg,
                rpc=RpcClient(nc, tracer_name=name),
                tracer_provider=provider,
            )
            tg.start_soon(_watch_signals, ctx)
            ctx.server(subjects.health(name), Ping)  # the kit's RpcServer answers Ping
            await main(ctx)
            for srv in ctx.servers:
                await srv.start(tg)
            log.info("%s ready on node %s", name, ctx.node)
            await ctx.stopping.wait()
            log.info("%s stopping", name)
            with anyio.move_on_after(DRAIN_TIMEOUT):
                for srv in ctx.servers:
                    await srv.stop()
            await ctx.run_cleanups()
            with anyio.move_on_after(DRAIN_TIMEOUT):
                await nc.drain()
            tg.cancel_scope.cancel()
    finally:
        if ctx is not None:
            await ctx.run_cleanups()  # main or a server failed: what it opened still closes
        if not nc.is_closed:
            with anyio.move_on_after(2):
                await nc.close()
        provider.shutdown()


async def _watch_signals(ctx: ServiceContext) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            ctx.stopping.set()
            return

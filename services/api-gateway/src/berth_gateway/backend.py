"""What the handlers need from the rest of berth: engine RPC and NATS stream subjects."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from berth_contracts import subjects
from berth_contracts.base import Command, Reply
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

R = TypeVar("R", bound=Reply)

# Pending limits of one stream subscription (nats-py applies them per subscription). NATS has
# no flow control, so output waiting for a slow HTTP client queues here: enough for bursts of
# tens of MiB, bounded so that many stalled clients cannot exhaust the gateway's memory.
_PENDING_MSGS = 512 * 1024
_PENDING_BYTES = 64 * 1024 * 1024


@dataclass
class Backend:
    rpc: RpcClient
    nc: NATS

    async def call(
        self, command: Command, reply_type: type[R], *, reply_timeout: float = 30.0
    ) -> R:
        return await self.rpc.request(
            subjects.ENGINE_RPC, command, reply_type, timeout=reply_timeout
        )

    @contextlib.asynccontextmanager
    async def subscribe(self, subject: str, *, flush: bool = True) -> AsyncIterator[Subscription]:
        """A subscription that is live on the server when this yields (the flush round-trips).

        flush=False when a request to the engine follows at once: it travels on the same
        connection, so the server registers the subscription before it routes the request, and
        whatever the engine publishes after it received the request reaches the subscription.
        """
        sub = await self.nc.subscribe(
            subject, pending_msgs_limit=_PENDING_MSGS, pending_bytes_limit=_PENDING_BYTES
        )
        try:
            if flush:
                await self.nc.flush(timeout=10)
            yield sub
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def new_inbox(self) -> str:
        return self.nc.new_inbox()


BACKEND_KEY = web.AppKey("backend", Backend)


def backend(request: web.Request) -> Backend:
    return request.app[BACKEND_KEY]

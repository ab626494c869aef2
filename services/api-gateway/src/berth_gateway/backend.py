"""What the handlers need from the rest of berth: engine RPC and NATS stream subjects."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from berth_contracts import subjects
from berth_contracts.base import Command, Reply
from berth_contracts.errors import Unavailable
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

R = TypeVar("R", bound=Reply)

log = logging.getLogger(__name__)

# Pending limits of one stream subscription (nats-py applies them per subscription). NATS has
# no flow control, so output waiting for a slow HTTP client queues here; past the limit the
# subscription drops messages (berth_kit logs a warning). At most _MAX_STREAMS subscriptions
# at once, so stalled clients cannot take more than _MAX_STREAMS x _PENDING_BYTES of memory.
_PENDING_BYTES = int(os.environ.get("BERTH_API_STREAM_BUFFER", 8 * 1024 * 1024))
_PENDING_MSGS = max(1024, _PENDING_BYTES // 128)
_MAX_STREAMS = int(os.environ.get("BERTH_API_MAX_STREAMS", 512))


@dataclass
class Backend:
    rpc: RpcClient
    nc: NATS
    streams: int = 0  # subscriptions open now

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
        if self.streams >= _MAX_STREAMS:
            log.warning("refusing a stream: %d open (BERTH_API_MAX_STREAMS)", self.streams)
            raise Unavailable(f"too many concurrent streams: the limit is {_MAX_STREAMS} (BERTH_API_MAX_STREAMS)")
        self.streams += 1
        try:
            sub = await self.nc.subscribe(
                subject, pending_msgs_limit=_PENDING_MSGS, pending_bytes_limit=_PENDING_BYTES
            )
        except BaseException:
            self.streams -= 1
            raise
        try:
            if flush:
                await self.nc.flush(timeout=10)
            yield sub
        finally:
            self.streams -= 1
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def new_inbox(self) -> str:
        return self.nc.new_inbox()


BACKEND_KEY = web.AppKey("backend", Backend)


def backend(request: web.Request) -> Backend:
    return request.app[BACKEND_KEY]

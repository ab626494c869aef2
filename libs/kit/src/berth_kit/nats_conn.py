"""Connecting to NATS: retry until the server is there, then reconnect forever."""

from __future__ import annotations

import logging
import weakref

import anyio
import nats
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.errors import SlowConsumerError

log = logging.getLogger(__name__)


async def connect(servers: str, name: str, connect_deadline: float = 60.0) -> NATS:
    """Connect, retrying with backoff for up to connect_deadline seconds.

    Once connected, the client reconnects on its own for as long as the process lives, so a
    service survives NATS restarting.
    """

    async def _disconnected() -> None:
        log.warning("%s: disconnected from NATS", name)

    async def _reconnected() -> None:
        log.info("%s: reconnected to NATS", name)

    slow: weakref.WeakSet[Subscription] = weakref.WeakSet()

    async def _error(exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            # Over its pending limits the subscription drops messages (bounded memory rather
            # than a stalled reader holding everything): say so once per subscription.
            if exc.sub is not None and exc.sub not in slow:
                slow.add(exc.sub)
                log.warning("%s: slow consumer on %s: messages dropped", name, exc.subject)
            return
        log.debug("%s: NATS error: %s", name, exc)

    delay = 0.05
    with anyio.fail_after(connect_deadline):
        while True:
            try:
                return await nats.connect(
                    servers=servers.split(","),
                    name=name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    allow_reconnect=True,
                    disconnected_cb=_disconnected,
                    reconnected_cb=_reconnected,
                    error_cb=_error,
                    # Keep publishes issued while disconnected, up to 8 MiB.
                    pending_size=8 * 1024 * 1024,
                )
            except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
                log.info("%s: NATS not reachable yet (%s); retrying", name, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)

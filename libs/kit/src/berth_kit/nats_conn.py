"""Connecting to NATS: retry until the server is there, then reconnect forever.

With credentials (BERTH_NATS_CREDS names this service's file, berth_kit.busauth) the client
authenticates as that identity and takes its replies on the identity's own inbox prefix, the
only one its permissions let it read.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from pathlib import Path
from typing import Any

import anyio
import nats
from berth_contracts import subjects
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.errors import SlowConsumerError

from berth_kit.busauth import CREDS_ENV, Credentials, read_credentials

log = logging.getLogger(__name__)

# What the server says when it refuses a connection, a publish or a subscription.
_REFUSALS = ("authorization violation", "permissions violation", "authentication")
REFUSAL_REPEAT = 30.0


def credentials_options(
    name: str, creds_file: str | None = None, creds: Credentials | None = None
) -> dict[str, Any]:
    """nats.connect options for creds, or the credentials in creds_file (default:
    $BERTH_NATS_CREDS); none but the inbox prefix without credentials. Raises CredentialsError
    on a bad file."""
    path = os.environ.get(CREDS_ENV, "") if creds_file is None else creds_file
    if creds is None and not path:
        return {"inbox_prefix": subjects.inbox_prefix(name)}
    creds = creds or read_credentials(Path(path))
    return {
        "user": creds.user,
        "password": creds.password,
        "inbox_prefix": subjects.inbox_prefix(creds.user),
    }


def is_refusal(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _REFUSALS)


async def connect(
    servers: str,
    name: str,
    connect_deadline: float = 60.0,
    creds_file: str | None = None,
    creds: Credentials | None = None,
) -> NATS:
    """Connect, retrying with backoff for up to connect_deadline seconds.

    Once connected, the client reconnects on its own for as long as the process lives, so a
    service survives NATS restarting.
    """
    auth = credentials_options(name, creds_file, creds)

    async def _disconnected() -> None:
        log.warning("%s: disconnected from NATS", name)

    async def _reconnected() -> None:
        log.info("%s: reconnected to NATS", name)

    last_refusal: dict[str, float] = {}
    slow: weakref.WeakSet[Subscription] = weakref.WeakSet()

    async def _error(exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            # Over its pending limits the subscription drops messages (bounded memory rather
            # than a stalled reader holding everything): say so once per subscription.
            if exc.sub is not None and exc.sub not in slow:
                slow.add(exc.sub)
                log.warning("%s: slow consumer on %s: messages dropped", name, exc.subject)
            return
        # A refused connection, publish or subscription is a bug or an attack: say so where it
        # is seen, once per REFUSAL_REPEAT for the same words (a refused connection is retried
        # several times a second).
        text = str(exc)
        now = time.monotonic()
        if is_refusal(exc) and now - last_refusal.get(text, -REFUSAL_REPEAT) >= REFUSAL_REPEAT:
            last_refusal[text] = now
            log.warning("%s: NATS refused: %s", name, text)
        else:
            log.debug("%s: NATS error: %s", name, text)

    delay = 0.05
    with anyio.fail_after(connect_deadline):
        while True:
            try:
                nc = await nats.connect(
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
                    **auth,
                )
                log.info("%s: connected to NATS as %s", name, auth.get("user", "anonymous"))
                tolerate_cancelled_flushes(nc)
                return nc
            except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
                log.info("%s: NATS not reachable yet (%s); retrying", name, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)


def tolerate_cancelled_flushes(nc: NATS) -> None:
    """Keep the read loop alive when a flush was cancelled before its PONG came.

    nats-py 2.16 resolves each PONG's future without checking it; a flush whose wait was
    cancelled (its timeout, or the cancel scope of the request that flushed) leaves a cancelled
    future there, and set_result on it raises InvalidStateError inside the read loop, which
    dies: the client never reads again (a gateway got no reply from the engine from then on).
    """

    async def process_pong() -> None:
        if nc._pongs:
            future = nc._pongs.pop(0)
            if not future.done():
                future.set_result(True)
            nc._pongs_received += 1
            nc._pings_outstanding = 0

    nc._process_pong = process_pong  # type: ignore[method-assign]

"""Container stdin: every StdinChunk for this agent's containers, in order, via one subscription.

`docker run -i` attaches (and starts sending input) before the container is started, so input
can arrive before TaskCreate has given the container a stdin pipe. Chunks for containers that are
not ready yet are held for a while (bounded in time and bytes) and delivered, in order, once
they are. One wildcard subscription keeps the order of everything the agent receives.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.streams import StdinChunk
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

HOLD_SECONDS = 60.0
HOLD_BYTES_PER_ID = 256 * 1024
HOLD_BYTES_TOTAL = 8 * 1024 * 1024

Deliver = Callable[[str, StdinChunk], Awaitable[None]]


@dataclass
class _Held:
    since: float
    chunks: list[StdinChunk] = field(default_factory=list)
    size: int = 0


class StdinRouter:
    def __init__(self, nc: NATS, deliver: Deliver) -> None:
        self._nc = nc
        self._deliver = deliver
        self._ready: set[str] = set()
        self._held: dict[str, _Held] = {}
        self._held_bytes = 0
        self._lock = anyio.Lock()  # delivery and hand-over are ordered with respect to each other
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(subjects.stdio_in("*"), cb=self._on_msg)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # the connection may be closed already
                await sub.unsubscribe()

    async def _on_msg(self, msg: Msg) -> None:
        cid = msg.subject.split(".")[-2]
        try:
            chunk = decode(msg.data, StdinChunk)
        except Exception:  # noqa: BLE001 - garbage on the subject is ignored
            return
        async with self._lock:
            if cid in self._ready:
                await self._deliver(cid, chunk)
            else:
                self._hold(cid, chunk)

    def _hold(self, cid: str, chunk: StdinChunk) -> None:
        now = time.monotonic()
        for old in [k for k, h in self._held.items() if now - h.since > HOLD_SECONDS]:
            self._drop(old)
        held = self._held.setdefault(cid, _Held(since=now))
        size = len(chunk.data)
        if held.size + size > HOLD_BYTES_PER_ID or self._held_bytes + size > HOLD_BYTES_TOTAL:
            log.warning("dropping early stdin for %s: too much before the task exists", cid[:12])
            return
        held.chunks.append(chunk)
        held.size += size
        self._held_bytes += size

    def _drop(self, cid: str) -> None:
        held = self._held.pop(cid, None)
        if held is not None:
            self._held_bytes -= held.size

    async def ready(self, cid: str) -> None:
        """The container has a stdin now: deliver what was held for it, then live input."""
        async with self._lock:
            self._ready.add(cid)
            held = self._held.get(cid)
            if held is not None:
                self._drop(cid)
                for chunk in held.chunks:
                    await self._deliver(cid, chunk)

    def forget(self, cid: str) -> None:
        self._ready.discard(cid)
        self._drop(cid)

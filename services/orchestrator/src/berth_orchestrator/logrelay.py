"""Passing a log replay on: LogBatch messages read on one subject, sent on to another.

A container's log replay is paced (berth_agent.logs): every few batches one comes as a request,
a checkpoint, and the sender sends no further until the reader answered it. A relay keeps that
whole chain paced: it sends a checkpoint on as a checkpoint and answers the one it received
only once its own reader answered, so a slow `docker service logs` client slows the agent on
the task's node and nothing piles up in between. Empty batches are "still there?" probes:
never answered (a probe that times out means the reader is there; "no responders", gone).
"""

from __future__ import annotations

import contextlib
import uuid

import anyio
import msgspec
from berth_contracts.codec import decode, encode
from berth_contracts.streams import LogBatch, LogLine
from berth_kit.logprobe import reader_present
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError

PROBE_EVERY = 5.0  # the agent's LISTENER_PROBE_INTERVAL: how soon a reader's absence is seen
# An upstream hears from its sender at least every PROBE_EVERY (batches, checkpoints, probes):
# silence for this long is a sender gone (its node lost).
SILENCE = 4 * PROBE_EVERY


class ReaderGone(Exception):
    """Nobody reads the downstream subject any more (the client left)."""


class SenderGone(Exception):
    """The upstream sender was silent for SILENCE seconds."""


class Downstream:
    """Where a relay sends: subject on nc; checkpoints are answered under ack_prefix."""

    def __init__(self, nc: NATS, subject: str, ack_prefix: str) -> None:
        self.nc = nc
        self.subject = subject
        self.ack_prefix = ack_prefix

    async def send(self, lines: list[LogLine], checkpoint: bool = False) -> None:
        """A checkpoint returns once the reader answered it (raises ReaderGone)."""
        data = encode(LogBatch(lines=lines))
        if not checkpoint:
            await self.nc.publish(self.subject, data)
            return
        ack = f"{self.ack_prefix}.{uuid.uuid4().hex}"
        sub = await self.nc.subscribe(ack, max_msgs=1)
        try:
            await self.nc.publish(self.subject, data, reply=ack)
            while True:
                try:
                    await sub.next_msg(timeout=PROBE_EVERY)
                    return
                except NatsTimeoutError:
                    if not await self.present():
                        raise ReaderGone from None
        finally:
            with contextlib.suppress(Exception):  # gone already (max_msgs) or disconnected
                await sub.unsubscribe()

    async def present(self) -> bool:
        return await reader_present(self.nc, self.subject)

    async def end(self, error: str = "") -> None:
        with contextlib.suppress(Exception), anyio.move_on_after(5):
            await self.nc.publish(self.subject, encode(LogBatch(lines=[], end=True, error=error)))

    async def watch(self, scope: anyio.CancelScope) -> None:
        """Cancels scope once the reader is gone (checked every PROBE_EVERY): the probes are
        also what tells the reader that this sender is still there."""
        while True:
            await anyio.sleep(PROBE_EVERY)
            if not await self.present():
                scope.cancel()
                return


async def relay(upstream: Subscription, down: Downstream, attrs: dict[str, str] | None = None) -> str:
    """Pass batches on until the upstream's last; returns its error ("" if none). attrs: set on
    every line (a service log's node, service and task). Raises SenderGone, ReaderGone."""
    while True:
        try:
            msg = await upstream.next_msg(timeout=SILENCE)
        except NatsTimeoutError:
            raise SenderGone from None
        try:
            batch = decode(msg.data, LogBatch)
        except msgspec.DecodeError:
            return "undecodable log batch"
        if batch.lines:
            lines = [msgspec.structs.replace(line, attrs=attrs) for line in batch.lines] if attrs else batch.lines
            await down.send(lines, checkpoint=bool(msg.reply))
            if msg.reply:
                await msg.respond(b"")
        if batch.end or batch.error:
            return batch.error

"""Replaying a log: ContainerLogs (or a service's ServiceLogs) to a fresh inbox, LogBatch
messages back.

Shared by GET /logs, attach with logs=1 and a service's or task's logs. The inbox is subscribed (and flushed) before the
request goes out, so no batch can arrive before anyone listens.

Pacing: a batch that comes as a request (the agent's checkpoints, every few batches) is
answered once all its lines were taken by the consumer (written to the client), and the agent
sends no further than a window past the last answered checkpoint: a slow client slows the
replay and the subscription never overflows. Empty batches are the agent's "still there?"
probes and are never answered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.engine import ContainerLogs, LogsStarted
from berth_contracts.errors import InternalError
from berth_contracts.streams import LogBatch, LogLine
from berth_contracts.swarm import ServiceLogs
from nats.aio.subscription import Subscription

from berth_gateway.backend import Backend


class LogStreamError(Exception):
    """The log stream ended with an error after it had started (LogBatch.error)."""


@contextlib.asynccontextmanager
async def log_replay(
    be: Backend, command: ContainerLogs | ServiceLogs
) -> AsyncIterator[tuple[LogsStarted, AsyncIterator[LogLine]]]:
    """Start a replay; yields the reply and an iterator over the lines. A container's log
    comes from the engine, a service's from the orchestrator (which reads its tasks' logs
    from their nodes' engines).

    Errors before the first line (no such container, bad parameters) are raised on entry, so
    the caller can still answer with a plain HTTP error.
    """
    inbox = be.new_inbox()
    subject = subjects.ORCHESTRATOR_RPC if isinstance(command, ServiceLogs) else subjects.ENGINE_RPC
    async with be.subscribe(inbox, flush=False) as sub:  # the request follows
        command = msgspec.structs.replace(command, stream_subject=inbox)
        started = await be.rpc.request(subject, command, LogsStarted, timeout=30.0)
        yield started, _lines(sub)


async def _lines(sub: Subscription) -> AsyncIterator[LogLine]:
    async for msg in sub.messages:
        try:
            batch = decode(msg.data, LogBatch)
        except Exception as exc:  # noqa: BLE001 - a broken batch ends the stream
            raise InternalError(f"undecodable log batch: {exc}") from None
        for line in batch.lines:
            yield line
        if batch.lines and msg.reply:
            await msg.respond(b"")  # every line of this checkpoint was taken: send on
        if batch.error:
            raise LogStreamError(batch.error)
        if batch.end:
            return

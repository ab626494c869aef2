"""A hijacked client's input, relayed as StdinChunks to a container's or an exec's stdin."""

from __future__ import annotations

import anyio
from berth_contracts.codec import encode
from berth_contracts.streams import StdinChunk

from berth_gateway import detachkeys
from berth_gateway.backend import Backend
from berth_gateway.hijack import Hijacked


async def pump_stdin(
    be: Backend,
    conn: Hijacked,
    subject: str,
    *,
    eof_at_end: bool,
    detach_keys: bytes,
    session: anyio.CancelScope,
) -> None:
    """Relay until the client half-closes (then eof if eof_at_end) or types detach_keys (then
    `session` is cancelled: the process runs on, the client's connection is closed)."""
    assert conn.stdin is not None
    watch = detachkeys.EscapeWatch(detach_keys) if detach_keys else None
    while (data := await conn.stdin.read()) is not None:
        if watch is not None:
            data, detached = watch.feed(data)
            if detached:
                session.cancel()
                return
        if data:
            await be.nc.publish(subject, encode(StdinChunk(data=data)))
    if eof_at_end:
        await be.nc.publish(subject, encode(StdinChunk(data=b"", eof=True)))
    await be.nc.flush(timeout=10)

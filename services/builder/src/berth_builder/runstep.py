"""A RUN step's container: start it, relay its output, wait for its exit code.

The output comes as StdioChunk on subjects.stdio_out(id) (the last one eof=True), the exit
code with the engine's `die` event on subjects.docker_events("container", id); both are
subscribed before the start, so nothing is missed. stderr is wrapped in moby's colour codes
(`\\x1b[91m` ... `\\x1b[0m`), as dockerd's builder writes it into the stream.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import AsyncIterator

import anyio
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event
from berth_contracts.engine import ContainerStart, Done
from berth_contracts.errors import BerthError
from berth_contracts.streams import STDERR, StdioChunk
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from berth_builder.build import BuildError

# After the exit, output still in flight gets this long before the step goes on without it.
EOF_GRACE = 10.0
_utf8 = codecs.getincrementaldecoder("utf-8")


def _exit_code(event: Event) -> int:
    try:
        return int(event.Actor.Attributes.get("exitCode", "0"))
    except ValueError:
        return 0


async def run_container(rpc: RpcClient, nc: NATS, cid: str) -> AsyncIterator[dict[str, str] | int]:
    """Output messages, then the exit code (an int) last."""
    send, receive = anyio.create_memory_object_stream[tuple[str, bytes]](math.inf)

    async def on_output(msg: Msg) -> None:
        send.send_nowait(("out", msg.data))

    async def on_event(msg: Msg) -> None:
        send.send_nowait(("event", msg.data))

    out_sub = await nc.subscribe(subjects.stdio_out(cid), cb=on_output)
    event_sub = await nc.subscribe(subjects.docker_events("container", cid), cb=on_event)
    try:
        await nc.flush(timeout=10)
        try:
            await rpc.request(subjects.ENGINE_RPC, ContainerStart(ref=cid), Done, timeout=120.0)
        except BerthError as exc:
            raise BuildError(exc.message) from None
        exit_code: int | None = None
        eof = False
        decoders: dict[int, codecs.IncrementalDecoder] = {}
        while not eof or exit_code is None:
            item: tuple[str, bytes] | None = None
            if exit_code is None:
                item = await receive.receive()
            else:
                with anyio.move_on_after(EOF_GRACE):
                    item = await receive.receive()
                if item is None:
                    break
            kind, data = item
            if kind == "event":
                try:
                    event = decode(data, Event)
                except Exception:  # noqa: BLE001 - not an event we understand
                    continue
                if event.Action == "die":
                    exit_code = _exit_code(event)
                elif event.Action == "destroy" and exit_code is None:
                    raise BuildError(f"the step container {cid[:12]} was removed while it ran")
                continue
            chunk = decode(data, StdioChunk)
            if chunk.data:
                # A character split between two chunks is decoded whole.
                text = decoders.setdefault(chunk.stream, _utf8(errors="replace")).decode(chunk.data)
                if text:
                    yield {"stream": f"\x1b[91m{text}\x1b[0m" if chunk.stream == STDERR else text}
            eof = eof or chunk.eof
        yield exit_code or 0
    finally:
        with anyio.CancelScope(shield=True):
            for sub in (out_sub, event_sub):
                try:
                    await sub.unsubscribe()
                except Exception:  # noqa: BLE001 - the connection may be closing
                    pass
            send.close()
            receive.close()

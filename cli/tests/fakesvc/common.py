from __future__ import annotations

import os
from pathlib import Path

import anyio
from anyio.abc import SocketStream
from berth_kit.service import ServiceContext, run_service

PING_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"


async def _answer(stream: SocketStream) -> None:
    async with stream:
        with anyio.move_on_after(5):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive(4096)
                if not chunk:
                    return
                data += chunk
            await stream.send(PING_RESPONSE)


async def _serve_http(ctx: ServiceContext) -> None:
    for host in os.environ["BERTH_HOSTS"].split(","):
        if host.startswith("unix://"):
            path = Path(host[len("unix://") :])
            await anyio.Path(path).unlink(missing_ok=True)
            listener = await anyio.create_unix_listener(path)
            ctx.tg.start_soon(listener.serve, _answer)


def main(name: str, http: bool = False) -> None:
    async def service_main(ctx: ServiceContext) -> None:
        if http:
            await _serve_http(ctx)

    run_service(name, service_main)

"""docker exec: POST /containers/{id}/exec, /exec/{id}/start (hijacked), /exec/{id}/resize,
GET /exec/{id}/json.

As in moby, a start that fails after the connection was taken over reports its error as output
on the stream (the CLI prints it and reads the exit code, 126, from /exec/{id}/json).
"""

from __future__ import annotations

import functools

import anyio
from aiohttp import web
from berth_contracts import subjects
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.errors import BerthError
from berth_contracts.execs import (
    ExecConfig,
    ExecCreate,
    ExecCreated,
    ExecDetail,
    ExecGet,
    ExecResize,
    ExecStart,
    ExecStartConfig,
)
from berth_contracts.streams import STDOUT, StdioChunk
from nats.aio.subscription import Subscription

from berth_gateway import detachkeys, stdcopy
from berth_gateway.backend import backend
from berth_gateway.bodies import read_json
from berth_gateway.hijack import Hijacked, HijackedResponse, hijack
from berth_gateway.outputcredit import OutputCredit
from berth_gateway.params import qint
from berth_gateway.responses import json_response
from berth_gateway.stdinpump import pump_stdin
from berth_gateway.versions import API_VERSION_KEY


async def create(request: web.Request) -> web.Response:
    config = await read_json(request, ExecConfig)
    assert config is not None
    detachkeys.parse(config.detach_keys, "escape keys")  # moby's words for exec
    reply = await backend(request).call(
        ExecCreate(ref=request.match_info["id"], config=config), ExecCreated
    )
    return json_response({"Id": reply.id}, status=201)


async def inspect(request: web.Request) -> web.Response:
    reply = await backend(request).call(ExecGet(exec_id=request.match_info["id"]), ExecDetail)
    return json_response(reply.exec)


async def resize(request: web.Request) -> web.Response:
    await backend(request).call(
        ExecResize(
            exec_id=request.match_info["id"],
            height=qint(request, "h", 0),
            width=qint(request, "w", 0),
        ),
        Done,
    )
    return web.Response(status=200)


async def start(request: web.Request) -> web.StreamResponse:
    be = backend(request)
    body = await read_json(request, ExecStartConfig, allow_empty=True) or ExecStartConfig()
    exec_id = request.match_info["id"]
    detail = await be.call(ExecGet(exec_id=exec_id), ExecDetail)  # 404 before any hijack
    size = body.console_size or [0, 0]
    command = ExecStart(
        exec_id=exec_id, tty=detail.tty, height=size[0], width=size[1] if len(size) > 1 else 0
    )
    if body.detach:
        await be.call(command, Done)
        return web.Response(status=200)
    # As in moby, the process has a terminal if the exec was created with one (stdin and the
    # detach keys follow that), but the stream is raw or multiplexed by the start body's Tty:
    # docker-py's exec_start(tty=...) differs from its exec_create(tty=...) when asked to.
    tty, raw = detail.tty, body.tty
    async with be.subscribe(subjects.stdio_out(exec_id), flush=False) as sub:  # ExecStart follows
        credit = OutputCredit(be.nc, exec_id)  # the agent paces the exec's output to this client
        await credit.register()
        conn = await hijack(request, stdcopy.media_type(request[API_VERSION_KEY], raw))
        try:
            try:
                await be.call(command, Done, reply_timeout=70.0)
            except BerthError as exc:
                await conn.write(stdcopy.encode(STDOUT, f"{exc.message}\r\n".encode(), raw))
                return HijackedResponse()
            async with anyio.create_task_group() as tg:
                if detail.exec.open_stdin and conn.stdin is not None:
                    # The client's half-close closes the exec's stdin (moby's CloseStdin), but a
                    # terminal outlives a client that detached (on the detach keys, TTY only).
                    pump = functools.partial(
                        pump_stdin,
                        be,
                        conn,
                        subjects.stdio_in(exec_id),
                        eof_at_end=not tty,
                        detach_keys=detachkeys.parse(detail.exec.detach_keys) if tty else b"",
                        session=tg.cancel_scope,
                    )
                    tg.start_soon(pump)
                tg.start_soon(credit.heartbeat)
                await _relay(sub, conn, raw, detail, credit)
                tg.cancel_scope.cancel()  # the process is gone: its stdin with it
        except* ConnectionError:
            pass  # the client went away; the process runs on, as with dockerd
        finally:
            conn.close()
            await credit.leave()
    return HijackedResponse()


async def _relay(
    sub: Subscription, conn: Hijacked, raw: bool, detail: ExecDetail, credit: OutputCredit
) -> None:
    # A raw stream carries no stderr: moby gives the process no stderr writer then.
    wanted = {1: detail.exec.open_stdout, 2: detail.exec.open_stderr and not raw}
    async for msg in sub.messages:
        chunk = decode(msg.data, StdioChunk)
        if chunk.data and wanted.get(chunk.stream, False):
            await conn.write(stdcopy.encode(chunk.stream, chunk.data, raw))
        await credit.delivered(chunk)
        if chunk.eof:
            return

"""GET /containers/{id}/logs: the json-file log as stdcopy frames (raw with a TTY); the same
rendering serves a swarm service's and task's logs (routes/swarm.py)."""

from __future__ import annotations

import contextlib
from urllib.parse import quote_plus

from aiohttp import web
from berth_contracts.engine import ContainerLogs
from berth_contracts.errors import InvalidParameter
from berth_contracts.streams import LogLine
from berth_contracts.swarm import ServiceLogs

from berth_gateway import stdcopy
from berth_gateway.backend import backend
from berth_gateway.logreplay import LogStreamError, log_replay
from berth_gateway.params import qbool, qtime
from berth_gateway.versions import API_VERSION_KEY


def parse_tail(raw: str) -> int:
    """`all` (or nothing) is -1; a number is that many lines; anything else is `all`, as moby."""
    if raw in ("", "all"):
        return -1
    try:
        value = int(raw)
    except ValueError:
        return -1
    return value if value >= 0 else -1


def render_line(line: LogLine, timestamps: bool, details: bool = False) -> bytes:
    """As moby writes a log message: [time ]["k=v,k=v" ]line (the details query-escaped)."""
    data = line.data
    if details:
        attrs = ",".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in line.attrs.items())
        data = attrs.encode() + b" " + data
    if timestamps:
        return line.time.encode() + b" " + data
    return data


async def logs(request: web.Request) -> web.StreamResponse:
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    command = ContainerLogs(
        ref=request.match_info["id"],
        stream_subject="",
        stdout=stdout,
        stderr=stderr,
        follow=qbool(request, "follow"),
        tail=parse_tail(request.query.get("tail", "")),
        since=qtime(request, "since"),
        until=qtime(request, "until"),
        # The gateway renders timestamps itself from LogLine.time; the data stays untouched.
        timestamps=False,
    )
    return await stream_log(request, command)


async def stream_log(
    request: web.Request, command: ContainerLogs | ServiceLogs, error_prefix: str = ""
) -> web.StreamResponse:
    """The log as stdcopy frames (raw with a TTY); an error after the start ends it as a
    system-error frame (the CLI's "error from daemon in stream")."""
    timestamps, details = qbool(request, "timestamps"), qbool(request, "details")
    async with log_replay(backend(request), command) as (started, lines):
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": stdcopy.media_type(request[API_VERSION_KEY], started.tty)},
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            try:
                async for line in lines:
                    payload = render_line(line, timestamps, details)
                    await response.write(stdcopy.encode(line.stream, payload, started.tty))
            except LogStreamError as exc:
                if not started.tty:
                    await response.write(stdcopy.frame(stdcopy.SYSTEMERR, f"{error_prefix}{exc}".encode()))
            await response.write_eof()
        return response

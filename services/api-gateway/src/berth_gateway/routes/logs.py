"""GET /containers/{id}/logs: the json-file log as stdcopy frames (raw with a TTY)."""

from __future__ import annotations

import contextlib

from aiohttp import web
from berth_contracts.engine import ContainerLogs
from berth_contracts.errors import InvalidParameter
from berth_contracts.streams import LogLine

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


def render_line(line: LogLine, timestamps: bool) -> bytes:
    if timestamps:
        return line.time.encode() + b" " + line.data
    return line.data


async def logs(request: web.Request) -> web.StreamResponse:
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    # `details` adds log-driver attributes; json-file without log labels has none to add.
    timestamps = qbool(request, "timestamps")
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
                    payload = render_line(line, timestamps)
                    await response.write(stdcopy.encode(line.stream, payload, started.tty))
            except LogStreamError as exc:
                if not started.tty:
                    await response.write(stdcopy.frame(stdcopy.SYSTEMERR, str(exc).encode()))
            await response.write_eof()
        return response

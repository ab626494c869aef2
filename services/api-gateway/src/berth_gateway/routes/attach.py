"""POST /containers/{id}/attach: the hijacked stdio stream of a container's main process.

Order matters: the CLI attaches before it starts the container, so the gateway subscribes to
the container's output subject before it answers (watch.py: the resolve that follows the
subscription proves the server has it); every chunk published after the 101 (or during a
logs=1 replay) is already queued for this client. The reader registers for output credit at
the same point (outputcredit.py), so the agent paces the container's output to this client.
"""

from __future__ import annotations

import functools

import anyio
from aiohttp import web
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event
from berth_contracts.engine import ContainerLogs, ContainerRef
from berth_contracts.streams import STDERR, STDOUT, StdioChunk
from nats.aio.subscription import Subscription

from berth_gateway import detachkeys, stdcopy
from berth_gateway.backend import Backend, backend
from berth_gateway.hijack import Hijacked, HijackedResponse, hijack
from berth_gateway.logreplay import LogStreamError, log_replay
from berth_gateway.outputcredit import OutputCredit
from berth_gateway.params import qbool
from berth_gateway.stdinpump import pump_stdin
from berth_gateway.versions import API_VERSION_KEY
from berth_gateway.watch import watch_container

_FINISHED = ("exited", "dead")
# How long an attach to a stopped container waits for it to be started again (docker start -a
# sends the start right after the attach is answered).
RESTART_GRACE = 5.0


class Streams:
    """Which of the container's streams this client asked for."""

    def __init__(self, stdout: bool, stderr: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def wants(self, stream: int) -> bool:
        if stream == STDERR:
            return self.stderr
        return self.stdout if stream == STDOUT else False


async def attach(request: web.Request) -> web.StreamResponse:
    detach_keys = detachkeys.parse(request.query.get("detachKeys", ""))
    be = backend(request)
    logs, stream = qbool(request, "logs"), qbool(request, "stream")
    streams = Streams(qbool(request, "stdout"), qbool(request, "stderr"))
    async with watch_container(be, request.match_info["id"], _attach_subjects) as watched:
        ref, latest = watched.first, watched.latest  # latest None: removed, nothing to stream
        sub, events = watched.subs
        with_stdin = qbool(request, "stdin") and ref.open_stdin
        content_type = stdcopy.media_type(request[API_VERSION_KEY], ref.tty)
        credit = OutputCredit(be.nc, ref.id)
        await credit.register()
        conn = await hijack(request, content_type)
        try:
            if logs:
                await _replay_logs(be, conn, ref, streams)
            if stream and latest is not None and await _has_a_run_to_stream(latest, events):
                async with anyio.create_task_group() as tg:
                    if with_stdin and conn.stdin is not None:
                        # As in moby, the end of one client's input closes the container's
                        # stdin only for StdinOnce containers without a TTY: another client may
                        # attach later (a terminal outlives a client that detached). Only a TTY
                        # detaches on the detach keys.
                        pump = functools.partial(
                            pump_stdin,
                            be,
                            conn,
                            subjects.stdio_in(latest.id),
                            eof_at_end=latest.stdin_once and not latest.tty,
                            detach_keys=detach_keys if latest.tty else b"",
                            session=tg.cancel_scope,
                        )
                        tg.start_soon(pump)
                    tg.start_soon(credit.heartbeat)
                    await _relay_output(sub, conn, ref.tty, streams, credit)
                    tg.cancel_scope.cancel()  # output ended: stdin has nowhere to go
        except* ConnectionError:
            pass  # the client went away: nothing left to deliver
        finally:
            conn.close()
            await credit.leave()
    return HijackedResponse()


def _attach_subjects(container_id: str) -> list[str]:
    return [subjects.stdio_out(container_id), subjects.docker_events("container", container_id)]


async def _replay_logs(be: Backend, conn: Hijacked, ref: ContainerRef, streams: Streams) -> None:
    command = ContainerLogs(
        ref=ref.id, stream_subject="", stdout=streams.stdout, stderr=streams.stderr
    )
    try:
        async with log_replay(be, command) as (_, lines):
            async for line in lines:
                await conn.write(stdcopy.encode(line.stream, line.data, ref.tty))
    except LogStreamError as exc:
        if not ref.tty:
            await conn.write(stdcopy.frame(stdcopy.SYSTEMERR, str(exc).encode()))


async def _relay_output(
    sub: Subscription, conn: Hijacked, tty: bool, streams: Streams, credit: OutputCredit
) -> None:
    """Forward StdioChunks until the eof chunk: then all output has been sent."""
    async for msg in sub.messages:
        chunk = decode(msg.data, StdioChunk)
        if chunk.data and streams.wants(chunk.stream):
            await conn.write(stdcopy.encode(chunk.stream, chunk.data, tty))
        await credit.delivered(chunk)
        if chunk.eof:
            return


async def _until_started(events: Subscription) -> bool:
    """Wait for the container's `start` event; False if it died or went away instead."""
    async for msg in events.messages:
        try:
            action = decode(msg.data, Event).Action
        except Exception:  # noqa: BLE001 - not an event: keep waiting
            continue
        if action == "start":
            return True
        if action in ("die", "destroy"):
            return False
    return False


async def _has_a_run_to_stream(latest: ContainerRef, events: Subscription) -> bool:
    """Whether the process runs, or is about to: then its output and input are streamed.

    Until it runs, output stays queued in the subscription and input in the stdin parser, so
    nothing is published before the runtime has somewhere to put it.
    """
    if latest.status == "created":
        # docker run / start -a: attach first, start next. Wait as long as the client does.
        return await _until_started(events)
    if latest.status in _FINISHED:
        # `docker start -a` attaches to a stopped container and then starts it again; any other
        # attach to a stopped container ends (after its logs, if asked) once it is clear that
        # no new run is coming.
        with anyio.move_on_after(RESTART_GRACE):
            return await _until_started(events)
        return False
    return True

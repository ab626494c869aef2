"""POST /containers/{id}/wait: headers at once, the exit status when the condition is met.

The docker CLI sends /wait before /start and blocks until the response headers arrive, so the
order is fixed: resolve and subscribe to the container's events (watch.py; 404 before any
header), send 200 + headers, then wait.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import nats.errors
from aiohttp import web
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event, WaitResponse
from berth_contracts.errors import InvalidParameter
from nats.aio.subscription import Subscription

from berth_gateway.backend import backend
from berth_gateway.responses import JSON, encode
from berth_gateway.watch import watch_container

Condition = Literal["not-running", "next-exit", "removed"]
_CONDITIONS: tuple[Condition, ...] = ("not-running", "next-exit", "removed")
_RUNNING = ("running", "restarting", "paused", "removing")


def parse_condition(raw: str) -> Condition:
    if raw == "":
        return "not-running"
    for condition in _CONDITIONS:
        if raw == condition:
            return condition
    raise InvalidParameter("invalid condition")


def exit_code_of(event: Event, default: int) -> int:
    try:
        return int(event.Actor.Attributes.get("exitCode", default))
    except ValueError:
        return default


async def wait_for(sub: Subscription, condition: Condition, exit_code: int) -> int:
    """Consume the container's events until the condition holds; returns the exit code.

    `destroy` ends every condition: a removed container will not exit again.
    """
    async for msg in sub.messages:
        try:
            event = decode(msg.data, Event)
        except Exception:  # noqa: BLE001 - not an event we understand; keep waiting
            continue
        if event.Action == "die":
            exit_code = exit_code_of(event, exit_code)
            if condition != "removed":
                return exit_code
        elif event.Action == "destroy":
            return exit_code
    return exit_code


async def _queued_exit_code(sub: Subscription, exit_code: int) -> int:
    """The exit code of a `die` already delivered to the subscription, if there is one.

    The engine publishes die/destroy before it answers a resolve with "No such container", on
    the same connection, so those events are queued here by the time the answer arrived.
    """
    while sub.pending_msgs:
        try:
            msg = await sub.next_msg(timeout=1)
        except nats.errors.TimeoutError:
            break
        try:
            event = decode(msg.data, Event)
        except Exception:  # noqa: BLE001 - not an event: skip it
            continue
        if event.Action == "die":
            exit_code = exit_code_of(event, exit_code)
    return exit_code


def _event_subjects(container_id: str) -> list[str]:
    return [subjects.docker_events("container", container_id)]


async def wait(request: web.Request) -> web.StreamResponse:
    condition = parse_condition(request.query.get("condition", ""))
    be = backend(request)
    async with watch_container(be, request.match_info["id"], _event_subjects) as watched:
        ref, (sub,) = watched.first, watched.subs
        gone = watched.latest is None
        latest = watched.latest or ref
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if gone:
            code = await _queued_exit_code(sub, latest.exit_code)
        elif condition == "not-running" and latest.status not in _RUNNING:
            code = latest.exit_code
        elif condition == "next-exit" and ref.status in _RUNNING and latest.status not in _RUNNING:
            code = latest.exit_code  # it exited while we were subscribing
        else:
            # The client going away cancels this handler (handler_cancellation), which ends
            # the wait and the subscription: that is the cancel path.
            code = await wait_for(sub, condition, latest.exit_code)
        with contextlib.suppress(ConnectionError):
            await response.write(encode(WaitResponse(StatusCode=code, Error=None)) + b"\n")
            await response.write_eof()
        return response

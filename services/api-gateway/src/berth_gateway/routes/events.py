"""GET /events: live Docker events from NATS, one JSON object per chunk.

With `since`, the engine's history (its last 256 events, as moby keeps) is replayed first;
`until` ends the stream at that time (after the history when it is already past). The live
subscription starts before the history is read, so nothing falls between; what both hold is
shown once.
"""

from __future__ import annotations

import contextlib
import time

import anyio
from aiohttp import web
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event
from berth_contracts.eventlog import EventHistory, EventList

from berth_gateway import versions
from berth_gateway.backend import backend
from berth_gateway.eventfilter import matches
from berth_gateway.params import qfilters, qtime
from berth_gateway.responses import JSON, json_line
from berth_gateway.versions import API_VERSION_KEY


async def events(request: web.Request) -> web.StreamResponse:
    filters = qfilters(request)
    since = qtime(request, "since")
    until = qtime(request, "until")
    be = backend(request)
    hide_image_create = not versions.at_least(request[API_VERSION_KEY], "1.46")
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    response.enable_chunked_encoding()
    remaining = None if until == 0.0 else until - time.time()
    async with be.subscribe(subjects.DOCKER_EVENTS_ALL) as sub:
        # A StreamResponse sends its headers on prepare: clients see the stream at once.
        await response.prepare(request)
        seen: set[tuple[int, str, str, str]] = set()
        if since or (remaining is not None and remaining <= 0):
            history = await be.call(EventHistory(since=since, until=until), EventList)
            for event in history.events:
                seen.add(_key(event))
                if _shown(event, filters, hide_image_create):
                    await response.write(json_line(event))
        if remaining is not None and remaining <= 0:
            await response.write_eof()
            return response
        with contextlib.suppress(ConnectionError):
            with anyio.move_on_after(remaining if remaining is not None else float("inf")):
                async for msg in sub.messages:
                    try:
                        event = decode(msg.data, Event)
                    except Exception:  # noqa: BLE001 - skip what is not an event
                        continue
                    if since and event.time and event.time < since or _key(event) in seen:
                        continue
                    if _shown(event, filters, hide_image_create):
                        await response.write(json_line(event))
            await response.write_eof()
    return response


def _key(event: Event) -> tuple[int, str, str, str]:
    return (event.timeNano, event.Type, event.Action, event.Actor.ID)


def _shown(event: Event, filters: dict[str, list[str]], hide_image_create: bool) -> bool:
    if hide_image_create and event.Type == "image" and event.Action == "create":
        return False  # moby shows image `create` events from API 1.46 on
    return matches(event, filters)

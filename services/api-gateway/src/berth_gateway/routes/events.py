"""GET /events: live Docker events from NATS, one JSON object per chunk.

berth keeps no event history, so `since` only bounds what is shown from now on; `until` ends
the stream at that time (at once when it is already past).
"""

from __future__ import annotations

import contextlib
import time

import anyio
from aiohttp import web
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event

from berth_gateway import versions
from berth_gateway.backend import backend
from berth_gateway.eventfilter import matches
from berth_gateway.params import qfilters, qtime
from berth_gateway.responses import JSON, json_line
from berth_gateway.routes.table import Route
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
                    if since and event.time and event.time < since:
                        continue
                    if hide_image_create and event.Type == "image" and event.Action == "create":
                        continue  # moby shows image `create` events from API 1.46 on
                    if matches(event, filters):
                        await response.write(json_line(event))
            await response.write_eof()
    return response


ROUTES = [Route("GET", "/events", events)]

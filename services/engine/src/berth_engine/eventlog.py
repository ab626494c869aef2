"""The last Docker events of every publisher (engine, lifecycle), for `docker events --since`.

moby keeps its last 256 events in memory; so does this, fed from the same NATS subjects the
gateway streams live, so history and live stream hold the very same events.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque

from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event
from berth_contracts.errors import InvalidParameter
from berth_contracts.eventlog import EventHistory, EventList
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

KEEP = 256


class EventLog:
    def __init__(self, keep: int = KEEP) -> None:
        self.events: deque[Event] = deque(maxlen=keep)

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(subjects.DOCKER_EVENTS_ALL, cb=self._on_msg)

    async def _on_msg(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):  # what is not an event is not history
            self.events.append(decode(msg.data, Event))

    async def history(self, cmd: EventHistory) -> EventList:
        since_ns = _nanoseconds(cmd.since, "since")
        until_ns = _nanoseconds(cmd.until, "until") if cmd.until else None
        return EventList(
            events=[
                e
                for e in self.events
                if e.timeNano >= since_ns and (until_ns is None or e.timeNano <= until_ns)
            ]
        )


_LIMIT_S = 1e11  # ~ year 5138: any time beyond is "never", and stays an int once in ns


def _nanoseconds(seconds: float, what: str) -> int:
    """Unix seconds as ns; a NaN is refused, an infinite or huge time is clamped."""
    if math.isnan(seconds):
        raise InvalidParameter(f"invalid value for {what}: NaN")
    return int(max(-_LIMIT_S, min(_LIMIT_S, seconds)) * 1e9)

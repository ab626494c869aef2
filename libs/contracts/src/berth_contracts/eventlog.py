"""Event history: what `docker events --since` replays before the live stream (engine-kept)."""

from __future__ import annotations

import msgspec

from berth_contracts.base import Command, Reply
from berth_contracts.docker import Event


class EventHistory(Command, frozen=True):
    """Past events with since <= time <= until (unix seconds; until 0 = up to now), oldest first."""

    since: float = 0.0
    until: float = 0.0


class EventList(Reply, frozen=True):
    events: list[Event] = msgspec.field(default_factory=list)

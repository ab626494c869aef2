"""Docker image events (load, import, tag, untag, delete) published on docker_events("image", hex)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from berth_contracts import subjects
from berth_contracts.codec import encode
from berth_contracts.docker import Event, EventActor
from nats.aio.client import Client as NATS

log = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]


def image_event(action: str, actor_id: str, name: str) -> Event:
    ns = time.time_ns()
    return Event(
        Type="image",
        Action=action,
        Actor=EventActor(ID=actor_id, Attributes={"name": name}),
        scope="local",
        time=ns // 1_000_000_000,
        timeNano=ns,
        status=action,
        id=actor_id,
    )


def nats_publisher(nc: NATS) -> Publish:
    async def publish(event: Event) -> None:
        hex_id = event.Actor.ID.removeprefix("sha256:")
        try:
            await nc.publish(subjects.docker_events("image", hex_id), encode(event))
        except Exception:  # noqa: BLE001 - an event lost to a NATS outage must not fail the command
            log.warning("could not publish image %s event for %s", event.Action, event.Actor.ID)

    return publish


class Recorder:
    """A Publish that keeps events in a list (tests, and services running without NATS)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

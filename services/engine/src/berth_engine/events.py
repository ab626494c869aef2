"""Docker events for containers, published on subjects.docker_events("container", <id>)."""

from __future__ import annotations

import logging
import time

from berth_contracts import subjects
from berth_contracts.codec import encode
from berth_contracts.docker import Event, EventActor
from berth_kit.tracing import inject
from nats.aio.client import Client as NATS

from berth_engine.containers.records import Record

log = logging.getLogger(__name__)


def container_event(rec: Record, action: str, extra: dict[str, str] | None = None) -> Event:
    """moby's LogContainerEventWithAttributes: every label, then image and name, then extras."""
    attributes = dict(rec.config.labels or {})
    attributes["image"] = rec.image_name
    attributes["name"] = rec.name
    attributes.update(extra or {})
    now = time.time_ns()
    return Event(
        Type="container",
        Action=action,
        Actor=EventActor(ID=rec.id, Attributes=attributes),
        scope="local",
        time=now // 1_000_000_000,
        timeNano=now,
        status=action,
        id=rec.id,
        from_=rec.image_name,
    )


class EventPublisher:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc

    async def container(
        self, rec: Record, action: str, extra: dict[str, str] | None = None
    ) -> None:
        event = container_event(rec, action, extra)
        try:
            # Published with the current trace context so consumers can join the container's trace.
            await self._nc.publish(
                subjects.docker_events("container", rec.id), encode(event), headers=inject()
            )
        except Exception:  # noqa: BLE001 - an event lost to a NATS outage must not fail the action
            log.warning("could not publish %s event for %s", action, rec.short_id)

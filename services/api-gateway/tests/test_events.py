"""GET /events against the real gateway process: headers at once, live relay, filters, until."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import TYPE_CHECKING

import anyio
import nats
from berth_contracts import subjects
from berth_contracts.codec import encode
from berth_contracts.docker import Event, EventActor

if TYPE_CHECKING:
    from conftest import Gateway

CID = "c" * 64


def _publish(url: str, events: list[tuple[str, Event]]) -> None:
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            for subject, event in events:
                await nc.publish(subject, encode(event))
            await nc.flush()
        finally:
            await nc.close()

    anyio.run(main)


def _event(kind: str, actor: str, action: str, **attrs: str) -> Event:
    now = time.time_ns()
    return Event(
        Type=kind,
        Action=action,
        Actor=EventActor(ID=actor, Attributes=attrs),
        time=now // 1_000_000_000,
        timeNano=now,
    )


def test_until_in_the_past_ends_at_once(gateway: Gateway) -> None:
    response, body = gateway.request("GET", "/v1.44/events?until=1")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert body == b""


def test_live_events_are_filtered_and_relayed(gateway: Gateway) -> None:
    filters = json.dumps({"type": {"container": True}, "event": ["die"]})
    path = "/v1.44/events?" + urllib.parse.urlencode({"filters": filters})
    conn = gateway.connection()
    try:
        conn.request("GET", path)
        # Headers arrive before any event: the gateway flushes them at once.
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Transfer-Encoding"] == "chunked"
        _publish(
            gateway.nats_url,
            [
                (subjects.docker_events("image", "sha256:1"), _event("image", "sha256:1", "tag")),
                (subjects.docker_events("container", CID), _event("container", CID, "start")),
                (
                    subjects.docker_events("container", CID),
                    _event("container", CID, "die", exitCode="7", name="web"),
                ),
            ],
        )
        line = response.readline()
        event = json.loads(line)
        assert event["Type"] == "container"
        assert event["Action"] == "die"
        assert event["Actor"] == {"ID": CID, "Attributes": {"exitCode": "7", "name": "web"}}
        assert isinstance(event["time"], int) and isinstance(event["timeNano"], int)
    finally:
        conn.close()

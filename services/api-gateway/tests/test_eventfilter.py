"""Docker event filters."""

from __future__ import annotations

from berth_contracts.docker import Event, EventActor
from berth_gateway.eventfilter import matches

CID = "a" * 64


def _container_event(action: str, **attrs: str) -> Event:
    attributes = {"name": "web", "image": "busybox:latest", **attrs}
    return Event(Type="container", Action=action, Actor=EventActor(ID=CID, Attributes=attributes))


def test_type_and_event_filters() -> None:
    die = _container_event("die", exitCode="3")
    assert matches(die, {})
    assert matches(die, {"type": ["container"]})
    assert not matches(die, {"type": ["image"]})
    assert matches(die, {"event": ["start", "die"]})
    assert not matches(die, {"event": ["start"]})
    health = _container_event("health_status: healthy")
    assert matches(health, {"event": ["health_status"]})


def test_container_filter_by_id_prefix_or_name() -> None:
    event = _container_event("start")
    assert matches(event, {"container": [CID]})
    assert matches(event, {"container": [CID[:12]]})
    assert matches(event, {"container": ["web"]})
    assert not matches(event, {"container": ["other"]})


def test_label_filter() -> None:
    event = _container_event("start", **{"com.docker.compose.project": "demo"})
    assert matches(event, {"label": ["com.docker.compose.project"]})
    assert matches(event, {"label": ["com.docker.compose.project=demo"]})
    assert not matches(event, {"label": ["com.docker.compose.project=other"]})
    assert not matches(event, {"label": ["missing"]})


def test_image_filter() -> None:
    event = _container_event("start")
    assert matches(event, {"image": ["busybox"]})
    assert matches(event, {"image": ["busybox:latest"]})
    assert not matches(event, {"image": ["alpine"]})
    tag = Event(
        Type="image",
        Action="tag",
        Actor=EventActor(ID="sha256:" + "b" * 64, Attributes={"name": "busybox:latest"}),
    )
    assert matches(tag, {"image": ["busybox"]})

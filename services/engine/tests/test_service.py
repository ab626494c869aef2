"""The engine as a real process, with the real lifecycle service and a real nats-server.

No runtime agent here: these flows never start a container (see test_run_flows.py for those).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from berth_contracts import engine as e
from berth_contracts import subjects
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.docker import CreateRequest, Event, HostConfig
from berth_contracts.errors import (
    Conflict,
    InvalidParameter,
    NotFound,
    NotModified,
)
from berth_testsupport import images as testimages
from engine_harness import Services, collect, services_running

IMAGE = testimages.docker_save_archive(["busybox:latest"])


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root: Path = tmp_path_factory.mktemp("engine-svc")
    with services_running(root, "berth-lifecycle", "berth-engine", image=IMAGE.data) as s:
        yield s


def create(svc: Services, name: str = "", **body: object) -> str:
    body.setdefault("image", "busybox")
    body.setdefault("cmd", ["echo", "hello"])
    req = CreateRequest(**body)  # type: ignore[arg-type]
    return svc.engine(e.ContainerCreate(body=req, name=name), e.ContainerCreated).id


def inspect(svc: Services, ref: str):  # type: ignore[no-untyped-def]
    return svc.engine(e.ContainerGet(ref=ref), e.ContainerDetail).container


def test_missing_image_is_docker_404(svc: Services) -> None:
    with pytest.raises(NotFound) as err:
        create(svc, image="nothere")
    assert err.value.message == "No such image: nothere:latest"


def test_create_inspect_list_remove(svc: Services) -> None:
    cid = create(svc, "web", labels={"app": "demo"}, env=["FOO=bar"],
                 host_config=HostConfig(network_mode="default"))  # fmt: skip
    assert len(cid) == 64
    doc = inspect(svc, "web")
    assert doc.id == cid and doc.name == "/web"
    assert (doc.path, doc.args) == ("echo", ["hello"])
    assert doc.image == IMAGE.image_id
    assert doc.config.image == "busybox"
    assert doc.config.hostname == cid[:12]
    assert "FOO=bar" in (doc.config.env or [])
    assert any(e.startswith("PATH=") for e in doc.config.env or [])
    assert doc.state.status == "created"
    assert doc.state.started_at == "0001-01-01T00:00:00Z"
    assert doc.host_config.network_mode == "bridge"
    assert doc.host_config.log_config.type == "json-file"
    assert inspect(svc, cid[:10]).id == cid
    assert inspect(svc, "/web").id == cid

    running = svc.engine(e.ContainerList(), e.ContainerListing).items
    assert cid not in [c.id for c in running]
    items = svc.engine(
        e.ContainerList(all=True, filters={"label": ["app=demo"]}), e.ContainerListing
    ).items
    assert [c.id for c in items] == [cid]
    item = items[0]
    assert item.names == ["/web"] and item.status == "Created" and item.state == "created"
    assert item.command == "echo hello" and item.image_id == IMAGE.image_id

    ref = svc.engine(e.ContainerResolve(ref="web"), e.ContainerRef)
    assert (ref.id, ref.status, ref.tty) == (cid, "created", False)

    events = collect(
        svc.nats_url,
        subjects.docker_events("container", cid),
        lambda: svc.engine(e.ContainerRemove(ref="web"), Done),
    )
    actions = [decode(e, Event) for e in events]
    assert [e.Action for e in actions] == ["destroy"]
    assert actions[0].Actor.Attributes["app"] == "demo"
    assert actions[0].Actor.Attributes["name"] == "web"
    with pytest.raises(NotFound) as err:
        inspect(svc, "web")
    assert err.value.message == "No such container: web"


def test_create_publishes_event_with_labels(svc: Services) -> None:
    got: list[str] = []

    def run() -> None:
        got.append(create(svc, "evented", labels={"com.example": "x"}))

    events = [
        decode(e, Event) for e in collect(svc.nats_url, "berth.events.v1.docker.container.*", run)
    ]
    mine = [e for e in events if e.Actor.ID == got[0]]
    assert [e.Action for e in mine] == ["create"]
    ev = mine[0]
    assert ev.Actor.Attributes == {"com.example": "x", "image": "busybox", "name": "evented"}
    assert (ev.status, ev.id, ev.from_, ev.Type) == ("create", got[0], "busybox", "container")
    assert ev.timeNano // 1_000_000_000 == ev.time
    svc.engine(e.ContainerRemove(ref="evented"), Done)


def test_errors_use_dockers_words(svc: Services) -> None:
    cid = create(svc, "taken")
    with pytest.raises(Conflict) as err:
        create(svc, "taken")
    assert err.value.message == (
        f'Conflict. The container name "/taken" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )
    with pytest.raises(InvalidParameter) as bad:
        create(svc, "bad name!")
    assert "Invalid container name (bad name!)" in bad.value.message
    # Not a hex word: "a" was the prefix of the id of "taken" one run in sixteen.
    with pytest.raises(InvalidParameter) as link:
        create(svc, host_config=HostConfig(links=["nosuch:b"]))
    assert link.value.message == "could not get container for nosuch: No such container: nosuch"
    with pytest.raises(NotFound):
        svc.engine(e.ContainerGet(ref="no-such-thing"), e.ContainerDetail)
    with pytest.raises(NotModified):
        svc.engine(e.ContainerStop(ref="taken"), Done)
    with pytest.raises(Conflict) as kill:
        svc.engine(e.ContainerKill(ref="taken"), Done)
    assert kill.value.message == f"Cannot kill container: taken: container {cid} is not running"
    with pytest.raises(InvalidParameter) as logs:
        svc.engine(e.ContainerLogs(ref="taken", stream_subject="x", stdout=False, stderr=False),
                   Done)  # fmt: skip
    assert logs.value.message == "Bad parameters: you must choose at least one stream"
    svc.engine(e.ContainerRemove(ref=cid), Done)


def test_images_facade_and_in_use_conflict(svc: Services) -> None:
    cid = create(svc, "user")
    images = svc.engine(e.ImageList(), e.ImageListing).items
    busybox = next(i for i in images if "busybox:latest" in i.repo_tags)
    assert busybox.id == IMAGE.image_id
    assert busybox.containers == 1
    assert svc.engine(e.ImageList(filters={"reference": ["busy*"]}), e.ImageListing).items
    assert not svc.engine(e.ImageList(filters={"reference": ["alpine"]}), e.ImageListing).items
    assert svc.engine(e.ImageGet(ref="busybox"), e.ImageDetail).image.id == IMAGE.image_id
    with pytest.raises(Conflict) as err:
        svc.engine(e.ImageRemove(ref=IMAGE.image_id), e.ImageRemoved)
    short = IMAGE.image_id.removeprefix("sha256:")[:12]
    assert err.value.message == (
        f"conflict: unable to delete {short} (must be forced) - "
        f"image is being used by stopped container {cid[:12]}"
    )
    with pytest.raises(InvalidParameter):
        svc.engine(e.ImageTag(ref="busybox", repo="Upper", tag="x"), Done)
    svc.engine(e.ImageTag(ref="busybox", repo="mine/box", tag="v1"), Done)
    assert svc.engine(e.ImageGet(ref="mine/box:v1"), e.ImageDetail).image.id == IMAGE.image_id
    # A second name of the image can go even while a container uses the image.
    removed = svc.engine(e.ImageRemove(ref="mine/box:v1"), e.ImageRemoved).items
    assert [r.untagged for r in removed] == ["mine/box:v1"]
    svc.engine(e.ContainerRemove(ref=cid), Done)


def test_info_counts(svc: Services) -> None:
    cid = create(svc, "counted")
    info = svc.engine(e.SystemInfo(), e.EngineInfo)
    assert info.containers >= 1 and info.stopped >= 1 and info.running == 0
    assert info.images >= 1
    assert info.ncpu >= 1 and info.mem_total > 0
    assert info.cgroup_version in ("1", "2")
    assert info.runtime_version
    svc.engine(e.ContainerRemove(ref=cid), Done)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_engine_restart_keeps_records(svc: Services, how: int) -> None:
    cid = create(svc, f"durable{int(how)}", labels={"k": "v"})
    before = inspect(svc, cid)
    svc.stop("berth-engine", how)
    svc.start("berth-engine")
    after = inspect(svc, f"durable{int(how)}")
    assert after == before
    with pytest.raises(Conflict):
        create(svc, f"durable{int(how)}")
    svc.engine(e.ContainerRemove(ref=cid), Done)


def test_start_without_agent_fails_cleanly(svc: Services) -> None:
    """No runtime agent in this module: start fails with 503 and the record stays usable."""
    cid = create(svc, "lonely")
    with pytest.raises(Exception) as err:  # noqa: B017 - the kind is what we check
        svc.engine(e.ContainerStart(ref=cid), Done, timeout=10.0)
    assert getattr(err.value, "kind", "") == "unavailable"
    doc = inspect(svc, cid)
    assert doc.state.status == "created"
    assert doc.state.error
    # The agent may hold a log for it: removal needs the agent, and keeps the record until then.
    with pytest.raises(Exception) as rm:  # noqa: B017
        svc.engine(e.ContainerRemove(ref=cid), Done)
    assert getattr(rm.value, "kind", "") == "unavailable"
    assert inspect(svc, cid).id == cid


def test_ancestor_filter_resolves_image_names(svc: Services) -> None:
    cid = create(svc, "descendant", image="busybox:latest")
    for ref in ("busybox", "busybox:latest", IMAGE.image_id, IMAGE.image_id[7:19]):
        got = svc.engine(e.ContainerList(all=True, filters={"ancestor": [ref]}), e.ContainerListing)
        assert cid in [c.id for c in got.items], ref
    none = svc.engine(e.ContainerList(all=True, filters={"ancestor": ["nothere"]}), e.ContainerListing)
    assert none.items == []
    svc.engine(e.ContainerRemove(ref=cid), Done)


def test_prune_removes_stopped_containers_the_filters_select(svc: Services) -> None:
    keep = create(svc, "keepme", labels={"keep": "1"})
    drop = create(svc, "dropme")
    pruned = svc.engine(e.ContainerPrune(filters={"label!": ["keep"]}), e.ContainersPruned)
    assert drop in pruned.containers_deleted and keep not in pruned.containers_deleted
    with pytest.raises(NotFound):
        inspect(svc, drop)
    with pytest.raises(InvalidParameter):
        svc.engine(e.ContainerPrune(filters={"bogus": ["1"]}), e.ContainersPruned)
    svc.engine(e.ContainerRemove(ref=keep), Done)


def test_rename(svc: Services) -> None:
    cid = create(svc, "oldname")
    other = create(svc, "other")
    raw = collect(svc.nats_url, subjects.docker_events("container", cid),
                  lambda: svc.engine(e.ContainerRename(ref="oldname", name="newname"), Done))  # fmt: skip
    ev = decode(raw[0], Event)
    assert (ev.Action, ev.Actor.Attributes["oldName"], ev.Actor.Attributes["name"]) == (
        "rename", "/oldname", "newname")  # fmt: skip
    assert inspect(svc, "newname").id == cid
    with pytest.raises(NotFound):
        inspect(svc, "oldname")
    with pytest.raises(Conflict):
        svc.engine(e.ContainerRename(ref=cid, name="other"), Done)
    with pytest.raises(InvalidParameter):
        svc.engine(e.ContainerRename(ref=cid, name="newname"), Done)
    with pytest.raises(InvalidParameter):
        svc.engine(e.ContainerRename(ref=cid, name="bad name"), Done)
    svc.engine(e.ContainerRemove(ref=cid), Done)
    svc.engine(e.ContainerRemove(ref=other), Done)

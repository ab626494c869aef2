"""Whole container lives through the engine, with the real lifecycle and runtime agent (runc)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from berth_contracts import engine as e
from berth_contracts import subjects
from berth_contracts.agent import TaskExit
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.docker import ContainerInspect, CreateRequest, Event, HostConfig, RestartPolicy
from berth_contracts.errors import Conflict, InvalidParameter, NotFound, NotModified
from berth_contracts.streams import LogBatch
from berth_kit.nats_conn import connect
from berth_testsupport import images as testimages
from engine_harness import NODE, Services, collect, services_running

IMAGE = testimages.docker_save_archive(["busybox:latest"])


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root: Path = tmp_path_factory.mktemp("engine-run")
    agent = "berth-runtime-agent"
    with services_running(root, "berth-lifecycle", agent, "berth-engine", image=IMAGE.data) as s:
        yield s


def create(svc: Services, cmd: list[str], name: str = "", **body: Any) -> str:
    req = CreateRequest(image="busybox", cmd=cmd, **body)
    return svc.engine(e.ContainerCreate(body=req, name=name), e.ContainerCreated).id


def inspect(svc: Services, ref: str) -> ContainerInspect:
    return svc.engine(e.ContainerGet(ref=ref), e.ContainerDetail).container


def until(check: Callable[[], bool], within: float = 20.0) -> bool:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return True


def exited(svc: Services, cid: str) -> Callable[[], bool]:
    return lambda: inspect(svc, cid).state.status == "exited"


def gone(svc: Services, cid: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            inspect(svc, cid)
            return False
        except NotFound:
            return True

    return check


def actions(raw: list[bytes], cid: str) -> list[str]:
    return [e.Action for e in (decode(r, Event) for r in raw) if e.Actor.ID == cid]


def read_logs(svc: Services, cid: str) -> bytes:
    async def go() -> bytes:
        nc = await connect(svc.nats_url, "engine-tests-logs", connect_deadline=5)
        out = b""
        try:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.flush()
            from berth_kit.rpc import RpcClient

            await RpcClient(nc).request(
                subjects.ENGINE_RPC, e.ContainerLogs(ref=cid, stream_subject=inbox), e.LogsStarted
            )
            with anyio.fail_after(20):
                while True:
                    batch = decode((await sub.next_msg(timeout=20)).data, LogBatch)
                    out += b"".join(line.data for line in batch.lines)
                    if batch.end or batch.error:
                        break
        finally:
            await nc.close()
        return out

    return anyio.run(go)


def test_run_to_completion_with_logs_and_events(svc: Services) -> None:
    cid = create(svc, ["sh", "-c", "echo hello; exit 3"], "done3")
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", cid),
        lambda: (svc.engine(e.ContainerStart(ref=cid), Done), until(exited(svc, cid))),
    )
    assert actions(raw, cid) == ["start", "die"]
    die = [decode(r, Event) for r in raw][-1]
    assert die.Actor.Attributes["exitCode"] == "3"
    doc = inspect(svc, cid)
    assert doc.state.exit_code == 3 and not doc.state.running
    assert doc.state.started_at != "0001-01-01T00:00:00Z"
    assert doc.state.finished_at != "0001-01-01T00:00:00Z"
    assert doc.log_path
    item = svc.engine(e.ContainerList(all=True, filters={"name": ["done3"]}), e.ContainerListing).items
    assert item[0].status.startswith("Exited (3) ")
    assert read_logs(svc, cid) == b"hello\n"
    # A second start runs it again.
    svc.engine(e.ContainerStart(ref=cid), Done)
    until(
        lambda: (
            inspect(svc, cid).state.status == "exited" and read_logs(svc, cid) == b"hello\nhello\n"
        )
    )
    svc.engine(e.ContainerRemove(ref=cid), Done)
    assert gone(svc, cid)()


def test_bad_command_maps_to_127_and_autoremove_does_not_hang(svc: Services) -> None:
    cid = create(svc, ["no-such-binary"], "bad")
    with pytest.raises(InvalidParameter) as err:
        svc.engine(e.ContainerStart(ref=cid), Done)
    assert err.value.message.startswith("failed to create task for container:")
    assert "executable file not found" in err.value.message
    doc = inspect(svc, cid)
    assert doc.state.status == "created" and doc.state.exit_code == 127
    assert "executable file not found" in doc.state.error
    svc.engine(e.ContainerRemove(ref=cid), Done)

    rm = create(svc, ["no-such-binary"], host_config=HostConfig(auto_remove=True))
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", rm),
        lambda: pytest.raises(InvalidParameter, svc.engine, e.ContainerStart(ref=rm), Done),
    )
    assert actions(raw, rm) == ["destroy"]
    assert gone(svc, rm)()


def test_autoremove_after_exit(svc: Services) -> None:
    cid = create(svc, ["true"], host_config=HostConfig(auto_remove=True))
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", cid),
        lambda: (svc.engine(e.ContainerStart(ref=cid), Done), until(gone(svc, cid))),
    )
    assert actions(raw, cid) == ["start", "die", "destroy"]


def test_stop_escalates_to_kill_and_rm_rules(svc: Services) -> None:
    # PID 1 without a TERM handler ignores SIGTERM: stop must escalate after the timeout.
    cid = create(svc, ["sleep", "300"], "sleeper")
    svc.engine(e.ContainerStart(ref=cid), Done)
    doc = inspect(svc, cid)
    assert doc.state.running and doc.state.pid > 0
    with pytest.raises(NotModified):
        svc.engine(e.ContainerStart(ref=cid), Done)
    with pytest.raises(Conflict) as err:
        svc.engine(e.ContainerRemove(ref="sleeper"), Done)
    assert err.value.message == (
        'cannot remove container "/sleeper": container is running: '
        "stop the container before removing or force remove"
    )
    assert [c.id for c in svc.engine(e.ContainerList(), e.ContainerListing).items] == [cid]
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", cid),
        lambda: svc.engine(e.ContainerStop(ref=cid, timeout=1), Done),
    )
    assert actions(raw, cid) == ["kill", "kill", "die", "stop"]
    assert inspect(svc, cid).state.exit_code == 137
    with pytest.raises(NotModified):
        svc.engine(e.ContainerStop(ref=cid), Done)
    svc.engine(e.ContainerRemove(ref=cid), Done)


def test_kill_with_signal_and_force_remove(svc: Services) -> None:
    script = "trap 'exit 7' TERM; while true; do sleep 0.1; done"
    cid = create(svc, ["sh", "-c", script])
    svc.engine(e.ContainerStart(ref=cid), Done)
    time.sleep(0.3)  # let the shell install its trap
    svc.engine(e.ContainerKill(ref=cid, signal="SIGTERM"), Done)
    until(exited(svc, cid))
    assert inspect(svc, cid).state.exit_code == 7

    svc.engine(e.ContainerStart(ref=cid), Done)
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", cid),
        lambda: svc.engine(e.ContainerRemove(ref=cid, force=True), Done),
    )
    assert actions(raw, cid) == ["kill", "die", "destroy"]
    assert gone(svc, cid)()


def test_engine_restart_while_running_and_missed_exit(svc: Services) -> None:
    cid = create(svc, ["sleep", "300"])
    short = create(svc, ["sh", "-c", "sleep 1"])
    svc.engine(e.ContainerStart(ref=cid), Done)
    svc.engine(e.ContainerStart(ref=short), Done)
    svc.stop("berth-engine", signal.SIGKILL)
    time.sleep(1.5)  # `short` exits while no engine listens
    svc.start("berth-engine")
    assert inspect(svc, cid).state.status == "running"
    until(exited(svc, short))
    assert inspect(svc, short).state.exit_code == 0
    svc.engine(e.ContainerRemove(ref=cid, force=True), Done)
    svc.engine(e.ContainerRemove(ref=short), Done)


def test_restart_policies(svc: Services) -> None:
    failing = create(
        svc,
        ["sh", "-c", "echo run; exit 2"],
        host_config=HostConfig(
            restart_policy=RestartPolicy(name="on-failure", maximum_retry_count=2)
        ),
    )
    raw = collect(
        svc.nats_url,
        subjects.docker_events("container", failing),
        lambda: (
            svc.engine(e.ContainerStart(ref=failing), Done),
            until(lambda: inspect(svc, failing).restart_count == 2 and exited(svc, failing)()),
        ),
        settle=0.5,
    )
    assert actions(raw, failing) == ["start", "die"] * 3
    doc = inspect(svc, failing)
    assert doc.state.exit_code == 2 and doc.host_config.restart_policy.name == "on-failure"
    assert read_logs(svc, failing) == b"run\nrun\nrun\n"
    svc.engine(e.ContainerRemove(ref=failing), Done)

    # `always` restarts a clean exit too, until a stop ends it (also during the back-off).
    looping = create(svc, ["sh", "-c", "sleep 0.2"],
                     host_config=HostConfig(restart_policy=RestartPolicy(name="always")))  # fmt: skip
    svc.engine(e.ContainerStart(ref=looping), Done)
    until(lambda: inspect(svc, looping).restart_count >= 2)
    svc.engine(e.ContainerStop(ref=looping, timeout=1), Done)
    doc = inspect(svc, looping)
    assert doc.state.status == "exited"
    count = doc.restart_count
    time.sleep(1.0)
    assert inspect(svc, looping).restart_count == count
    assert inspect(svc, looping).state.status == "exited"
    svc.engine(e.ContainerRemove(ref=looping, force=True), Done)


def test_tty_console_size_and_resize(svc: Services) -> None:
    sized = create(svc, ["stty", "size"], tty=True, host_config=HostConfig(console_size=[30, 100]))
    svc.engine(e.ContainerStart(ref=sized), Done)
    until(exited(svc, sized))
    assert read_logs(svc, sized).strip() == b"30 100"
    with pytest.raises(Conflict) as err:
        svc.engine(e.ContainerResize(ref=sized, height=10, width=10), Done)
    assert err.value.message == f"container {sized} is not running"
    svc.engine(e.ContainerRemove(ref=sized), Done)

    live = create(svc, ["sh", "-c", "while [ \"$(stty size)\" != '40 120' ]; do sleep 0.05; done; stty size"],
                  tty=True)  # fmt: skip
    svc.engine(e.ContainerStart(ref=live), Done)
    svc.engine(e.ContainerResize(ref=live, height=40, width=120), Done)
    until(exited(svc, live))
    # (Before the resize stty may complain about a 0x0 window: only the last line counts.)
    assert read_logs(svc, live).strip().splitlines()[-1] == b"40 120"
    svc.engine(e.ContainerRemove(ref=live), Done)

    plain = create(svc, ["sleep", "30"])
    svc.engine(e.ContainerStart(ref=plain), Done)
    svc.engine(e.ContainerResize(ref=plain, height=40, width=120), Done)  # no TTY: a no-op
    svc.engine(e.ContainerRemove(ref=plain, force=True), Done)


def test_restart_backoff_survives_engine_restart(svc: Services) -> None:
    cid = create(svc, ["sh", "-c", "exit 1"],
                 host_config=HostConfig(restart_policy=RestartPolicy(name="always")))  # fmt: skip
    svc.engine(e.ContainerStart(ref=cid), Done)
    until(lambda: inspect(svc, cid).restart_count >= 4)  # the back-off is 1.6 s now
    until(lambda: inspect(svc, cid).state.status == "restarting")
    count = inspect(svc, cid).restart_count
    svc.stop("berth-engine", signal.SIGKILL)
    svc.start("berth-engine")
    until(lambda: inspect(svc, cid).restart_count > count)
    svc.engine(e.ContainerRemove(ref=cid, force=True), Done)
    assert gone(svc, cid)()


def test_autoremove_retried_when_lifecycle_was_away(svc: Services) -> None:
    cid = create(svc, ["sleep", "1"], host_config=HostConfig(auto_remove=True))
    svc.engine(e.ContainerStart(ref=cid), Done)
    svc.stop("berth-lifecycle")
    try:
        until(exited(svc, cid))  # the exit is recorded; the removal cannot finish yet
    finally:
        svc.start("berth-lifecycle")
    until(gone(svc, cid))


def test_duplicate_task_exit_is_ignored(svc: Services) -> None:
    """Agents may report one exit twice (e.g. after re-adopting shims): one `die`, one state."""
    cid = create(svc, ["sh", "-c", "exit 5"])
    exits = collect(
        svc.nats_url,
        "berth.events.v1.task.>",
        lambda: (svc.engine(e.ContainerStart(ref=cid), Done), until(exited(svc, cid))),
    )
    mine = [raw for raw in exits if decode(raw, TaskExit).container_id == cid]
    assert len(mine) == 1
    before = inspect(svc, cid)

    async def republish() -> None:
        nc = await connect(svc.nats_url, "engine-tests-dup", connect_deadline=5)
        try:
            await nc.publish(subjects.task_events(NODE), mine[0])
            await nc.flush()
        finally:
            await nc.close()

    events = collect(svc.nats_url, subjects.docker_events("container", cid),
                     lambda: anyio.run(republish), settle=0.5)  # fmt: skip
    assert actions(events, cid) == []
    assert inspect(svc, cid) == before
    svc.engine(e.ContainerRemove(ref=cid), Done)

"""Create- and start-time checks of the namespace, device and resource options, and what the
task spec carries for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from berth_contracts.agent import DeviceMapping, RLimit
from berth_contracts.docker import CreateRequest, HostConfig, Ulimit
from berth_contracts.errors import InternalError, InvalidParameter, NotFound
from berth_engine.containers import hostopts
from berth_engine.containers.records import Record, State
from berth_engine.containers.store import RecordStore
from berth_engine.containers.taskspec import task_spec

pytestmark = pytest.mark.anyio


def _req(**hc: object) -> CreateRequest:
    return CreateRequest(image="busybox", cmd=["true"], host_config=HostConfig(**hc))  # type: ignore[arg-type]


async def _store_with(tmp_path: Path, make_record: Callable[..., Record], **donors: str) -> RecordStore:
    """A store holding one container per keyword: name -> its ipc mode ("" = stopped)."""
    store = RecordStore(tmp_path / "engine.db")
    for name, ipc in donors.items():
        rec = make_record(name, _req(ipc_mode=ipc or "private"))
        if ipc:
            rec.state = State(status="running", pid=42)
        await store.insert(rec)
    return store


async def test_joined_containers_are_resolved_to_full_ids(tmp_path: Path, make_record: Callable[..., Record]) -> None:
    store = await _store_with(tmp_path, make_record, donor="shareable")
    full = store.lookup("donor").id
    hc = hostopts.validate_create(_req(pid_mode="container:donor", ipc_mode=f"container:{full[:6]}"), store)
    assert (hc.pid_mode, hc.ipc_mode) == (f"container:{full}", f"container:{full}")
    with pytest.raises(InvalidParameter, match="^No such container: nosuch$"):
        hostopts.validate_create(_req(ipc_mode="container:nosuch"), store)


@pytest.mark.parametrize(
    ("req", "error"),
    [
        (_req(cgroupns_mode="bogus"), "invalid cgroup namespace mode: bogus"),
        (CreateRequest(image="b", hostname="x", host_config=HostConfig(uts_mode="host")),
         "conflicting options: hostname and the UTS mode"),
        (_req(extra_hosts=["foo"]), 'bad format for add-host: "foo"'),
        (_req(extra_hosts=["foo:nope"]), 'invalid IP address in add-host: "nope"'),
        (_req(memory_swappiness=101), "Invalid value: 101, valid memory swappiness range is 0-100"),
        (_req(cpuset_cpus="0-x"), "Invalid value 0-x for cpuset cpus"),
    ],
)  # fmt: skip
async def test_create_refusals(req: CreateRequest, error: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as exc:
        hostopts.validate_create(req, RecordStore(tmp_path / "e.db"))
    assert exc.value.message == error


async def test_isolation_is_dockerds_500(tmp_path: Path) -> None:
    with pytest.raises(InternalError, match="linux only supports 'default'"):
        hostopts.validate_create(_req(isolation="hyperv"), RecordStore(tmp_path / "e.db"))


async def test_start_checks_the_donors(tmp_path: Path, make_record: Callable[..., Record]) -> None:
    store = await _store_with(tmp_path, make_record, shared="shareable", private="private", stopped="")
    ids = {n: store.lookup(n).id for n in ("shared", "private", "stopped")}

    def check(**hc: object) -> None:
        hostopts.check_start(make_record("x", _req(**hc)), store)

    check(ipc_mode=f"container:{ids['shared']}", pid_mode=f"container:{ids['private']}")
    with pytest.raises(InternalError) as exc:
        check(ipc_mode=f"container:{ids['private']}")
    assert exc.value.message == (
        f"can't join IPC of container {ids['private']}: non-shareable IPC "
        "(hint: use IpcMode:shareable for the donor container)"
    )
    with pytest.raises(InternalError, match=f"^can't join IPC of container {ids['stopped']}: container {ids['stopped']} is not running$"):
        check(ipc_mode=f"container:{ids['stopped']}")
    with pytest.raises(InternalError, match=f"^container {ids['stopped']} is not running$"):
        check(pid_mode=f"container:{ids['stopped']}")
    with pytest.raises(NotFound):
        check(pid_mode="container:" + "f" * 64)
    with pytest.raises(InternalError, match="^Invalid IPC mode: bogus$"):
        check(ipc_mode="bogus")
    with pytest.raises(InternalError, match="^invalid device cgroup rule format: 'c 1:2'$"):
        check(device_cgroup_rules=["c 1:2"])
    check(device_cgroup_rules=["c 42:* rmw", "a *:* m", "b 8:0 r"])


def test_rlimits_merge_the_daemon_defaults() -> None:
    given = [Ulimit(name="nofile", soft=512, hard=1024)]
    defaults = [Ulimit(name="nofile", soft=1, hard=1), Ulimit(name="nproc", soft=9, hard=9)]
    assert hostopts.rlimits(given, defaults) == [
        RLimit(type="RLIMIT_NOFILE", soft=512, hard=1024),
        RLimit(type="RLIMIT_NPROC", soft=9, hard=9),
    ]
    assert hostopts.rlimits(None, []) is None  # nothing given: the agent's default stays


def test_add_host_records_and_host_gateway() -> None:
    assert hostopts.add_host_records(["a:host-gateway", "b:1.2.3.4", "c:::1"], "172.17.0.1") == [
        "172.17.0.1\ta",
        "1.2.3.4\tb",
        "::1\tc",
    ]
    with pytest.raises(InvalidParameter, match="host-gateway"):
        hostopts.add_host_records(["a:host-gateway"], "")


def test_task_spec_carries_the_options(make_record: Callable[..., Record]) -> None:
    req = _req(
        ulimits=[Ulimit(name="nofile", soft=5, hard=6)], sysctls={"net.ipv4.ip_forward": "1"},
        devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rw"}],
        device_cgroup_rules=["c 42:* rmw"], group_add=["users", "7"], pid_mode="host",
        ipc_mode="shareable", uts_mode="host", cgroup_parent="/p", cpuset_cpus="0",
        memory_reservation=1 << 20, memory_swappiness=-1, oom_kill_disable=True, init=True,
        extra_hosts=["a:1.2.3.4"], dns_search=["x"],
    )  # fmt: skip
    spec = task_spec(make_record("w", msgspec.structs.replace(req, domainname="d.org")))
    assert spec.rlimits == [RLimit(type="RLIMIT_NOFILE", soft=5, hard=6)]
    assert spec.sysctls == {"net.ipv4.ip_forward": "1"}
    assert spec.devices == [DeviceMapping("/dev/null", "/dev/n", "rw")]
    assert (spec.device_cgroup_rules, spec.group_add) == (["c 42:* rmw"], ["users", "7"])
    assert (spec.pid_mode, spec.ipc_mode, spec.uts_mode, spec.cgroupns_mode) == ("host", "shareable", "host", "host")
    assert (spec.cgroup_parent, spec.cpuset_cpus, spec.memory_reservation) == ("/p", "0", 1 << 20)
    assert spec.memory_swappiness is None and spec.oom_kill_disable and spec.init  # -1: unset
    # --add-host becomes records at start (starting.py), where host-gateway is known
    assert (spec.extra_hosts, spec.dns_search, spec.domainname) == ([], ["x"], "d.org")
    assert spec.masked_paths is not None and "/proc/kcore" in spec.masked_paths
    plain = task_spec(make_record("p", _req(pid_mode="bogus", uts_mode="bogus")))
    assert (plain.pid_mode, plain.ipc_mode, plain.uts_mode, plain.rlimits) == ("", "private", "", None)


def test_default_ulimits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from berth_engine import settings

    monkeypatch.setenv("BERTH_DEFAULT_ULIMITS", "nofile=1024:2048, nproc=512")
    assert settings.default_ulimits() == [
        Ulimit(name="nofile", soft=1024, hard=2048),
        Ulimit(name="nproc", soft=512, hard=512),
    ]
    monkeypatch.setenv("BERTH_DEFAULT_ULIMITS", "nofile=x")
    with pytest.raises(InvalidParameter, match="invalid ulimit argument: nofile=x"):
        settings.default_ulimits()

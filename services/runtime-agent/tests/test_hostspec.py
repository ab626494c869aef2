"""config.json parts from HostConfig options: namespaces, rlimits, sysctls, devices, device
cgroup rules, /dev/shm per IPC mode, --init, cgroup parent; --group-add and DNS files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from berth_agent import hostspec
from berth_agent.etcfiles import write_etc_files
from berth_agent.oci import build_config
from berth_agent.users import ExecUser, resolve_groups
from berth_contracts.agent import DeviceMapping, RLimit, TaskSpec
from berth_contracts.errors import InternalError

CID = "c" * 64


def config(spec: TaskSpec, joined: dict[str, str] | None = None, shm: str = "") -> dict[str, Any]:
    return build_config(CID, spec, ExecUser(0, 0), [], {}, True, joined or {}, shm)


def spec(**kw: Any) -> TaskSpec:
    return TaskSpec(args=["sh"], env=[], **kw)


def ns_of(cfg: dict[str, Any]) -> dict[str, str]:
    return {n["type"]: n.get("path", "") for n in cfg["linux"]["namespaces"]}


def test_namespaces_private_host_and_joined() -> None:
    assert ns_of(config(spec())) == dict.fromkeys(("mount", "pid", "ipc", "uts", "network"), "")
    cfg = config(spec(pid_mode="host", ipc_mode="host", uts_mode="host", cgroupns_mode="private"))
    assert ns_of(cfg) == {"mount": "", "network": "", "cgroup": ""}
    assert "hostname" not in cfg  # --uts host: the host's name stays
    joined = {"pid": "/proc/7/ns/pid", "ipc": "/proc/7/ns/ipc"}
    cfg = config(spec(pid_mode="container:x", ipc_mode="container:x"), joined, "/run/x/shm")
    assert ns_of(cfg)["pid"] == "/proc/7/ns/pid" and ns_of(cfg)["ipc"] == "/proc/7/ns/ipc"
    shm = next(m for m in cfg["mounts"] if m["destination"] == "/dev/shm")
    assert shm["type"] == "bind" and shm["source"] == "/run/x/shm"


def test_shm_per_ipc_mode() -> None:
    dests = [m["destination"] for m in config(spec(ipc_mode="none"))["mounts"]]
    assert "/dev/shm" not in dests and "/dev/mqueue" in dests
    private = next(m for m in config(spec())["mounts"] if m["destination"] == "/dev/shm")
    assert private["type"] == "tmpfs"


def test_rlimits_sysctls_cgroup_parent_and_resources() -> None:
    assert config(spec())["process"]["rlimits"][0]["type"] == "RLIMIT_NOFILE"
    only_nproc = config(spec(rlimits=[RLimit("RLIMIT_NPROC", 9, 9)]))["process"]["rlimits"]
    assert [r["type"] for r in only_nproc] == ["RLIMIT_NOFILE", "RLIMIT_NPROC"]
    cfg = config(
        spec(
            rlimits=[RLimit("RLIMIT_NOFILE", 512, 1024), RLimit("RLIMIT_NPROC", 9, 9)],
            sysctls={"kernel.msgmax": "1"}, domainname="example.org", cgroup_parent="/p/q",
            cpuset_cpus="0", cpuset_mems="0", memory_reservation=5, memory_swappiness=0,
            oom_kill_disable=True, masked_paths=[], readonly_paths=["/x"],
        )
    )  # fmt: skip
    assert cfg["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_NPROC", "soft": 9, "hard": 9},
    ]
    linux = cfg["linux"]
    assert linux["sysctl"] == {"kernel.domainname": "example.org", "kernel.msgmax": "1"}
    assert linux["cgroupsPath"] == f"/p/q/{CID}"
    assert linux["resources"]["memory"] == {"reservation": 5, "swappiness": 0, "disableOOMKiller": True}
    assert linux["resources"]["cpu"] == {"cpus": "0", "mems": "0"}
    assert (linux["maskedPaths"], linux["readonlyPaths"]) == ([], ["/x"])
    assert "maskedPaths" not in config(spec(privileged=True, masked_paths=["/y"]))["linux"]


def test_devices_nodes_directories_and_rules(tmp_path: Path) -> None:
    cfg = config(
        spec(
            devices=[DeviceMapping("/dev/null", "/dev/mynull", "rw")],
            device_cgroup_rules=["c 42:* rmw", "a *:* m"],
        )
    )
    node = cfg["linux"]["devices"][0]
    assert (node["path"], node["type"], node["major"], node["minor"]) == ("/dev/mynull", "c", 1, 3)
    rules = cfg["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in rules
    assert rules[-2:] == [
        {"allow": True, "type": "c", "major": 42, "access": "rmw"},
        {"allow": True, "type": "a", "access": "m"},
    ]
    # A directory: every device node under it, at the same place under the container path.
    (tmp_path / "sub").mkdir()
    os.symlink("/dev/null", tmp_path / "not-a-node")  # a symlink inside is skipped, as moby
    os.mknod(tmp_path / "sub" / "zero", 0o20666, os.makedev(1, 5))
    nodes, _ = hostspec.devices([DeviceMapping(str(tmp_path), "/dev/d", "r")])
    assert [(n["path"], n["minor"]) for n in nodes] == [("/dev/d/sub/zero", 5)]
    with pytest.raises(InternalError) as exc:
        hostspec.devices([DeviceMapping("/dev/nosuch", "/x", "rwm")])
    assert exc.value.message == (
        'error gathering device information while adding custom device "/dev/nosuch": '
        "no such file or directory"
    )


def test_init_wraps_the_command() -> None:
    if hostspec.shutil.which("docker-init") is None:
        pytest.skip("no docker-init (tini) on this host")
    cfg = config(spec(init=True))
    assert cfg["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    assert any(m["destination"] == "/sbin/docker-init" for m in cfg["mounts"])
    assert config(spec(init=True, pid_mode="host"))["process"]["args"] == ["sh"]


def test_group_add_names_and_numbers(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("root:x:0:\nusers:x:100:\n")
    assert resolve_groups(str(tmp_path), ["users", "0", "4242"]) == [100, 0, 4242]
    with pytest.raises(InternalError, match="^Unable to find group daemon: no matching entries in group file$"):
        resolve_groups(str(tmp_path), ["daemon"])


def test_hosts_and_resolv_conf_options(tmp_path: Path) -> None:
    files = write_etc_files(
        tmp_path, CID,
        spec(extra_hosts=["1.2.3.4\tfoo"], dns=["10.0.0.1"], dns_search=["a.org"],
             dns_options=["ndots:2"], hostname="h", domainname="d.org"),
    )  # fmt: skip
    hosts = files["/etc/hosts"].read_text().splitlines()
    assert hosts[-2:] == ["1.2.3.4\tfoo", "127.0.0.1\th.d.org\th"]
    assert files["/etc/resolv.conf"].read_text() == "search a.org\nnameserver 10.0.0.1\noptions ndots:2\n"


def test_process_user_and_the_execs_group_add() -> None:
    user = ExecUser(65534, 65534, [1000])
    assert hostspec.process_user(user, [4242]) == {
        "uid": 65534, "gid": 65534, "additionalGids": [65534, 1000, 4242],
    }  # fmt: skip
    kept = {"annotations": {hostspec.GROUP_ADD_ANNOTATION: "4242,1000"}}
    assert hostspec.group_add_of(kept) == [4242, 1000] and hostspec.group_add_of({}) == []

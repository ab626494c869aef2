"""Pieces that need neither runc nor NATS: user resolution, OCI spec, log format (time format: libs/common)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from berth_agent.oci import DEFAULT_CAPS, available_caps, build_config, capabilities
from berth_agent.shim.log import LINE_MAX, JsonFileLog
from berth_agent.users import read_in_root, resolve_user
from berth_contracts.agent import TaskSpec
from berth_contracts.errors import InvalidParameter


def make_root(tmp_path: Path, passwd: str, group: str) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(passwd)
    (root / "etc" / "group").write_text(group)
    return root


def test_resolve_user(tmp_path: Path) -> None:
    root = make_root(
        tmp_path,
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
        "root:x:0:\nwheel:x:10:root,app\napp:x:1001:\ndocker:x:999:app\n",
    )
    u = resolve_user(str(root), "")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (0, 0, [10], "/root")
    u = resolve_user(str(root), "app")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1001, [10, 999], "/home/app")
    u = resolve_user(str(root), "1000")
    assert (u.uid, u.gid) == (1000, 1001)
    u = resolve_user(str(root), "app:docker")
    assert (u.uid, u.gid, u.additional_gids) == (1000, 999, [])
    u = resolve_user(str(root), "5000:6000")
    assert (u.uid, u.gid, u.home) == (5000, 6000, "/")
    u = resolve_user(str(root), "5000")
    assert (u.uid, u.gid) == (5000, 0)
    with pytest.raises(
        InvalidParameter, match="unable to find user bob: no matching entries in passwd file"
    ):
        resolve_user(str(root), "bob")
    with pytest.raises(
        InvalidParameter, match="unable to find group nope: no matching entries in group file"
    ):
        resolve_user(str(root), "app:nope")


def test_resolve_user_does_not_follow_symlinks_out_of_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("inside:x:7:7::/in:/bin/sh\n")
    # An absolute symlink must resolve inside the rootfs, never to the host's /etc/passwd.
    (root / "etc" / "passwd").symlink_to("/real/passwd")
    (root / "etc" / "group").symlink_to("../../../../../../etc/group")
    assert resolve_user(str(root), "inside").uid == 7
    with pytest.raises(InvalidParameter):
        resolve_user(str(root), "root")  # the host has root; the rootfs does not
    assert resolve_user(str(root), "inside").additional_gids == []


def test_capabilities() -> None:
    assert capabilities(TaskSpec(args=["x"], env=[])) == DEFAULT_CAPS
    caps = capabilities(
        TaskSpec(args=["x"], env=[], cap_add=["NET_ADMIN"], cap_drop=["chown", "CAP_KILL"])
    )
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    assert capabilities(TaskSpec(args=["x"], env=[], cap_drop=["ALL"], cap_add=["CHOWN"])) == [
        "CAP_CHOWN"
    ]
    privileged = capabilities(TaskSpec(args=["x"], env=[], privileged=True))
    assert "CAP_SYS_ADMIN" in privileged and privileged == available_caps()
    with pytest.raises(InvalidParameter):
        capabilities(TaskSpec(args=["x"], env=[], cap_add=["NOPE"]))


def test_build_config() -> None:
    from berth_agent.users import ExecUser

    spec = TaskSpec(
        args=["sh"],
        env=["A=1"],
        hostname="h",
        memory=64 << 20,
        nano_cpus=1_500_000_000,
        cpu_shares=512,
        pids_limit=50,
        readonly_rootfs=True,
        oom_score_adj=100,
    )
    cfg = build_config(
        "c" * 64, spec, ExecUser(1, 2, [3]), [], {"/etc/hosts": Path("/b/hosts")}, True
    )
    assert cfg["hostname"] == "h" and cfg["root"] == {"path": "rootfs", "readonly": True}
    # The primary gid is a supplementary group too (moby since CVE-2022-36109).
    assert cfg["process"]["user"] == {"uid": 1, "gid": 2, "additionalGids": [2, 3]}
    assert cfg["process"]["oomScoreAdj"] == 100
    assert "HOSTNAME=h" in cfg["process"]["env"] and cfg["process"]["env"][0].startswith("PATH=")
    res = cfg["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"shares": 512, "period": 100000, "quota": 150000}
    assert res["pids"] == {"limit": 50}
    assert cfg["linux"]["cgroupsPath"] == "/berth/" + "c" * 64
    assert {"type": "network"} in cfg["linux"]["namespaces"]
    dests = [m["destination"] for m in cfg["mounts"]]
    assert dests[:7] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert "/etc/hosts" in dests
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    host = build_config(
        "c" * 64, TaskSpec(args=["sh"], env=[], network_mode="host"), ExecUser(0, 0), [], {}, True
    )
    assert {"type": "network"} not in host["linux"]["namespaces"]
    json.dumps(cfg)


def test_json_file_log_splits_like_docker(tmp_path: Path) -> None:
    path = tmp_path / "x" / "c-json.log"
    log = JsonFileLog(str(path))
    log.write(1, b"a\nb")
    log.write(1, b"c\n")
    log.write(2, b"x" * (LINE_MAX + 10) + b"\n")
    log.write(1, "é\n".encode())
    log.write(1, b"tail")
    log.close()
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "a\n"),
        ("stdout", "bc\n"),
        ("stderr", "x" * LINE_MAX),
        ("stderr", "x" * 10 + "\n"),
        ("stdout", "é\n"),
        ("stdout", "tail"),
    ]
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


def test_shim_side_imports_only_the_stdlib() -> None:
    """Every shim is a fork of the zygote: nothing heavy may be loaded there, and no threading
    (its fork handler alone costs each shim 0.4 MiB; subprocess imports it)."""
    import subprocess
    import sys

    code = (
        "import sys, berth_agent.shim.zygote, berth_agent.shim\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'nats', 'opentelemetry', 'msgspec', 'anyio', 'berth_contracts', 'berth_kit', 'asyncio', 'typing', 'dataclasses', 'threading', 'subprocess'})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_read_in_root_survives_renames_elsewhere(tmp_path: Path) -> None:
    """openat2(RESOLVE_IN_ROOT) fails with EAGAIN when any rename on the host races a `..` of
    the lookup (the suite's own file churn did, in CI); the read retries instead of failing."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("inside:x:7:7::/in:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to("../../../../../../real/passwd")
    stop = threading.Event()

    def rename_back_and_forth() -> None:
        a, b = tmp_path / "a", tmp_path / "b"
        a.touch()
        while not stop.is_set():
            a.rename(b)
            b.rename(a)

    renamer = threading.Thread(target=rename_back_and_forth)
    renamer.start()
    try:
        for _ in range(20000):
            assert read_in_root(str(root), "/etc/passwd") == b"inside:x:7:7::/in:/bin/sh\n"
    finally:
        stop.set()
        renamer.join()

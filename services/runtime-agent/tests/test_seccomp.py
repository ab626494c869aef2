"""Docker-format seccomp profiles to OCI linux.seccomp (berth_agent.seccomp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from berth_agent import seccomp
from berth_contracts.errors import BerthError, InvalidParameter

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "includes": {}, "excludes": {}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["cacheflush"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["chroot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_CHROOT"]}},
        {
            "names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "excludes": {"caps": ["CAP_SYS_CHROOT"]},
        },
        {"names": ["newcall"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.9"}},
        {
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
        {"name": "oldstyle", "action": "SCMP_ACT_ALLOW"},
    ],
}


def names(oci: dict) -> list[str]:  # type: ignore[type-arg]
    return [n for rule in oci["syscalls"] for n in rule["names"]]


def test_native_arch_and_its_sub_architectures() -> None:
    amd = seccomp.to_oci(PROFILE, [], machine="x86_64", kernel=(6, 1))
    assert amd["defaultAction"] == "SCMP_ACT_ERRNO" and amd["defaultErrnoRet"] == 38
    assert amd["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert "arch_prctl" in names(amd) and "cacheflush" not in names(amd)
    arm = seccomp.to_oci(PROFILE, [], machine="aarch64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "cacheflush" in names(arm) and "arch_prctl" not in names(arm)


def test_rules_follow_the_container_capabilities_and_the_kernel() -> None:
    without = seccomp.to_oci(PROFILE, ["CAP_CHOWN"], machine="x86_64", kernel=(6, 1))
    chroot = [r for r in without["syscalls"] if r["names"] == ["chroot"]]
    assert chroot == [{"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    with_cap = seccomp.to_oci(PROFILE, ["CAP_SYS_CHROOT"], machine="x86_64", kernel=(6, 1))
    assert [r["action"] for r in with_cap["syscalls"] if r["names"] == ["chroot"]] == ["SCMP_ACT_ALLOW"]
    assert "newcall" not in names(without)
    assert "newcall" in names(seccomp.to_oci(PROFILE, [], machine="x86_64", kernel=(10, 0)))
    # Arguments kept as they are; empty args and Docker-only keys dropped; "name" becomes names.
    personality = next(r for r in without["syscalls"] if r["names"] == ["personality"])
    assert personality["args"] == [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]
    assert "args" not in without["syscalls"][0] and "includes" not in without["syscalls"][0]
    assert "oldstyle" in names(without)


def test_for_container_default_unconfined_privileged_and_custom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "seccomp.json"
    path.write_text(json.dumps(PROFILE))
    monkeypatch.setenv("BERTH_SECCOMP_PROFILE", str(path))
    default = seccomp.for_container("", False, ["CAP_CHOWN"])
    assert default is not None and "read" in names(default)
    assert seccomp.for_container("builtin", False, []) == seccomp.for_container("", False, [])
    assert seccomp.for_container("unconfined", False, []) is None
    assert seccomp.for_container("", True, []) is None
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    assert seccomp.for_container(custom, False, []) == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    with pytest.raises(InvalidParameter, match="Decoding seccomp profile failed"):
        seccomp.for_container("{not json", False, [])
    path.unlink()
    with pytest.raises(BerthError, match="seccomp profile .* not found"):
        seccomp.for_container("", False, [])


def test_debian_profile_converts() -> None:
    """The file make install provides (golang-github-containers-common)."""
    oci = seccomp.to_oci(seccomp.parse(Path(seccomp.DEFAULT_PROFILE).read_text()), ["CAP_CHOWN"])
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO"
    assert {"read", "write", "execve", "clone"} <= set(names(oci))
    allowed_admin = [r for r in oci["syscalls"] if "bpf" in r["names"]]
    assert allowed_admin and all(r["action"] == "SCMP_ACT_ERRNO" for r in allowed_admin)

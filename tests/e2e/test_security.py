"""Seccomp and no-new-privileges, as `docker run --security-opt` gives them with dockerd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STATUS = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"


def status_of(berth: Berth, image: str, *opts: str) -> dict[str, str]:
    out = berth.docker_ok("run", "--rm", "--network", "none", *opts, image, "sh", "-c", STATUS)
    return dict(line.replace("\t", "").split(":", 1) for line in out.splitlines())


def test_default_profile_unconfined_privileged_and_no_new_privileges(
    berth: Berth, busybox_image: str
) -> None:
    # Mode 2 is a filter: the default profile is on, as with dockerd.
    assert status_of(berth, busybox_image) == {"NoNewPrivs": "0", "Seccomp": "2"}
    assert status_of(berth, busybox_image, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    assert status_of(berth, busybox_image, "--privileged")["Seccomp"] == "0"
    assert status_of(berth, busybox_image, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    # exec runs under the container's filter too.
    cid = berth.docker_ok("run", "-d", "--network", "none", busybox_image, "sleep", "60").strip()
    try:
        assert "Seccomp:\t2" in berth.docker_ok("exec", cid, "sh", "-c", STATUS)
    finally:
        berth.docker("rm", "-f", cid)


def test_default_profile_refuses_what_docker_refuses(berth: Berth, busybox_image: str) -> None:
    # unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN, which the profile requires for unshare's
    # namespace flags; busybox's unshare reports the EPERM.
    res = berth.docker("run", "--rm", "--network", "none", busybox_image, "unshare", "-m", "true")
    assert res.returncode != 0 and "Operation not permitted" in res.stderr, res


def test_custom_profile_from_a_file(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }
        )
    )
    opt = f"seccomp={profile}"  # the CLI reads the file and sends its JSON
    res = berth.docker("run", "--rm", "--network", "none", "--security-opt", opt, busybox_image, "mkdir", "/x")
    assert res.returncode == 1 and "Operation not permitted" in res.stderr, res
    cid = berth.docker_ok("create", "--security-opt", opt, busybox_image, "true").strip()
    try:
        stored = json.loads(berth.docker_ok("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", cid))
        assert len(stored) == 1 and stored[0].startswith("seccomp={")
    finally:
        berth.docker("rm", "-f", cid)


def test_bad_security_opts_are_refused_at_create(berth: Berth, busybox_image: str) -> None:
    before = berth.docker_ok("ps", "-aq").split()
    for opt, message in (
        ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
        ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ):
        res = berth.docker("create", "--security-opt", opt, busybox_image, "true")
        assert res.returncode != 0 and message in res.stderr, (opt, res.stderr)
    # The CLI refuses a bare word itself; the API answers it like dockerd.
    body = {"Image": busybox_image, "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["nonsense"]}}
    res = berth.http(
        "POST", "/containers/create", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    assert res.status == 400
    assert json.loads(res.body) == {"message": 'invalid --security-opt 1: "nonsense"'}
    assert berth.docker_ok("ps", "-aq").split() == before  # nothing half-created
    info = berth.docker_ok("info", "--format", "{{json .SecurityOptions}}")
    assert json.loads(info) == ["name=seccomp,profile=default"]

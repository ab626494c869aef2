"""berth's own registry with real clients: a scratch dockerd 20.10 logs in (Docker's bearer-token
flow served by the proxy), pushes, pulls back, is refused without or with wrong credentials and
for another user's private repository, pulls a public name anonymously; skopeo copies into it
with --dest-creds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from berth_testsupport import images as testimages
from dockerd_harness import DOCKER, DOCKERD, Dockerd, scratch_dockerd
from hosted_harness import HostedRun, hosted_registry

pytestmark = pytest.mark.timeout(300)
needs_dockerd = pytest.mark.skipif(DOCKERD is None or DOCKER is None or os.geteuid() != 0,
                                   reason="needs dockerd (apt docker.io) and root")


@pytest.fixture(scope="module")
def reg() -> Iterator[HostedRun]:
    with hosted_registry() as run:
        yield run


@pytest.fixture(scope="module")
def dockerd(reg: HostedRun) -> Iterator[Dockerd]:
    with scratch_dockerd("--insecure-registry", reg.address) as d, tempfile.TemporaryDirectory() as tmp:
        archive = testimages.docker_save_archive(("busybox:latest",)).write(Path(tmp) / "bb.tar")
        res = d.docker("load", "-i", str(archive))
        assert res.returncode == 0, res.stderr
        yield d


def login(d: Dockerd, reg: HostedRun, user: str, password: str) -> subprocess.CompletedProcess[str]:
    return d.docker("login", "-u", user, "--password-stdin", reg.address, stdin=password, timeout=60)


@needs_dockerd
def test_dockerd_login_push_pull_and_refusals(reg: HostedRun, dockerd: Dockerd) -> None:
    d, name = dockerd, f"{reg.address}/alice/bb:1"
    assert d.docker("tag", "busybox:latest", name).returncode == 0
    image_id = d.docker("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()
    # Without credentials: refused.
    res = d.docker("push", name)
    assert res.returncode != 0 and ("denied" in res.stderr or "unauthorized" in res.stderr), res.stderr
    # A wrong password and an unknown user: the same words, nothing about which part was wrong.
    wrong = login(d, reg, "alice", "wrong")
    unknown = login(d, reg, "nobody", "alice-pw")
    assert wrong.returncode != 0 and "unauthorized: incorrect username or password" in wrong.stderr, wrong.stderr
    assert wrong.stderr.replace("nobody", "alice") == unknown.stderr.replace("nobody", "alice")
    res = login(d, reg, "alice", "alice-pw")
    assert res.returncode == 0 and "Login Succeeded" in res.stdout, res.stderr + d.log()
    res = d.docker("push", name)
    assert res.returncode == 0, res.stderr + d.log()
    digest = res.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert (reg.data / "hosted" / "repositories" / "alice" / "bb" / "_manifests" / "revisions" / digest[7:]).exists()
    assert d.docker("rmi", name).returncode == 0
    res = d.docker("pull", name)
    assert res.returncode == 0 and f"Digest: {digest}" in res.stdout, res.stderr
    assert d.docker("image", "inspect", "-f", "{{.Id}}", name).stdout.strip() == image_id
    # A public name: pushed by alice, pulled by anyone.
    public = f"{reg.address}/alice/public-bb:1"
    assert d.docker("tag", "busybox:latest", public).returncode == 0
    assert d.docker("push", public).returncode == 0
    assert d.docker("logout", reg.address).returncode == 0
    for ref in (name, public):
        d.docker("rmi", ref)
    # Logged out: the private repository is refused, the public one is served.
    res = d.docker("pull", name)
    assert res.returncode != 0 and "denied" in res.stderr, res.stderr
    res = d.docker("pull", public)
    assert res.returncode == 0, res.stderr
    # Another user: bob may not read alice's private repository, nor push into it.
    assert login(d, reg, "bob", "bob-pw").returncode == 0
    res = d.docker("pull", name)
    assert res.returncode != 0 and "denied" in res.stderr, res.stderr
    assert d.docker("tag", "busybox:latest", name).returncode == 0
    res = d.docker("push", name)
    assert res.returncode != 0 and "denied" in res.stderr, res.stderr
    d.docker("logout", reg.address)


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed (make install)")
def test_skopeo_copies_with_dest_creds(reg: HostedRun) -> None:
    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)

    with tempfile.TemporaryDirectory() as tmp:
        archive = testimages.docker_save_archive(("busybox:latest",)).write(Path(tmp) / "bb.tar")
        dest = f"docker://{reg.address}/acme/sk:1"
        res = skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", dest)
        assert res.returncode != 0 and "403 (Forbidden)" in res.stderr, res.stderr  # an anonymous token: no push
        res = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "carol:carol-pw", f"docker-archive:{archive}", dest)
        assert res.returncode == 0, res.stderr
    # bob reads acme/* (the permissions file); without credentials or with a wrong password: refused.
    res = skopeo("inspect", "--tls-verify=false", "--creds", "bob:bob-pw", dest)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["Name"] == f"{reg.address}/acme/sk"
    assert skopeo("inspect", "--tls-verify=false", dest).returncode != 0
    res = skopeo("inspect", "--tls-verify=false", "--creds", "bob:wrong", dest)
    assert res.returncode != 0 and "incorrect username or password" in res.stderr, res.stderr

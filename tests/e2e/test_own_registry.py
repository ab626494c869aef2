"""berth's own registry inside a running berth: skopeo pushes into the registry-proxy's hosted
repositories (htpasswd user), then `docker pull` through berth (lifecycle → registry-proxy,
`?ns=<berth's own address>`) is served from them: a public name runs, a private one is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import bcrypt
import pytest
from berth_testsupport import images as testimages
from berth_testsupport import registry as tr
from harness import Berth

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed (make install)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="e2e tests need root"),
]


@pytest.fixture(scope="module")
def own() -> Iterator[tuple[Berth, str]]:
    b = Berth.create(None)
    address = f"127.0.0.1:{tr.free_port()}"
    htpasswd = b.base / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'alice-pw', bcrypt.gensalt(4)).decode()}\n")
    b.env.update(BERTH_REGISTRY_PROXY_LISTEN=address, BERTH_REGISTRY_HTPASSWD=str(htpasswd),
                 BERTH_REGISTRY_PUBLIC="alice/public-*")
    try:
        b.up_detached(60)
        yield b, address
    finally:
        b.teardown()


def test_pull_through_berth_is_served_from_its_own_registry(own: tuple[Berth, str]) -> None:
    berth, address = own
    archive = testimages.docker_save_archive(("busybox:latest",)).write(berth.base / "bb.tar")
    for name in ("public-bb", "private-bb"):
        res = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw",
                              f"docker-archive:{archive}", f"docker://{address}/alice/{name}:1"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    out = berth.docker_ok("pull", f"{address}/alice/public-bb:1", timeout=120)
    assert f"Status: Downloaded newer image for {address}/alice/public-bb:1" in out
    assert berth.docker_ok("run", "--rm", f"{address}/alice/public-bb:1", "echo", "hosted") == "hosted\n"
    res = berth.docker("pull", f"{address}/alice/private-bb:1", timeout=120)
    assert res.returncode != 0
    assert f"pull access denied for {address}/alice/private-bb" in res.stderr, res.stderr
    assert "may require 'docker login'" in res.stderr

"""A real dockerd (20.10, Debian's docker.io) with the proxy in `registry-mirrors` pulls a Docker
Hub name through it; the proxy's Docker Hub upstream is the local registry (via the Front)."""

from __future__ import annotations

import json
import os

import pytest
from dockerd_harness import DOCKER, DOCKERD, scratch_dockerd
from proxy_harness import ProxyRun

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(DOCKERD is None or DOCKER is None, reason="dockerd not installed (apt docker.io)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="dockerd needs root"),
]


def test_dockerd_pulls_docker_hub_name_through_the_proxy(proxy: ProxyRun) -> None:
    with scratch_dockerd("--registry-mirror", proxy.url) as dockerd:
        mirrors = json.loads(dockerd.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}", timeout=30).stdout)
        assert mirrors == [proxy.url + "/"]
        res = dockerd.docker("pull", "busybox:1")
        assert res.returncode == 0, res.stderr + dockerd.log()
        assert f"Digest: {proxy.seeded.busybox.digest}" in res.stdout
        image_id = dockerd.docker("image", "inspect", "--format", "{{.Id}}", "busybox:1", timeout=30).stdout.strip()
        assert image_id == proxy.seeded.busybox.image_id
        # It came through the proxy: the upstream saw the proxy fetch the layer once.
        assert proxy.front.blob_gets(proxy.seeded.busybox.layer_digests[0]) == 1

"""docker-py, unchanged, against berth: the calls scripts make most."""

from __future__ import annotations

import docker
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_ping_and_version(client: docker.DockerClient) -> None:
    assert client.ping() is True
    version = client.version()
    assert version["ApiVersion"]
    assert float(version["ApiVersion"]) >= 1.44


def test_run_remove(client: docker.DockerClient, busybox_image: str) -> None:
    out = client.containers.run(busybox_image, ["echo", "via-docker-py"], remove=True)
    assert out == b"via-docker-py\n"


def test_detached_lifecycle(client: docker.DockerClient, busybox_image: str) -> None:
    c = client.containers.run(busybox_image, ["sh", "-c", "echo hi; exit 5"], detach=True, name="pyrun")
    try:
        assert c.wait(timeout=60)["StatusCode"] == 5
        assert c.logs() == b"hi\n"
        c.reload()
        assert c.status == "exited"
        assert c.name == "pyrun"
        assert any(x.id == c.id for x in client.containers.list(all=True))
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pyrun")


def test_images_list(client: docker.DockerClient, busybox_image: str) -> None:
    tags = {t for img in client.images.list() for t in img.tags}
    assert busybox_image in tags
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("berth-test/no-such-image:v0")

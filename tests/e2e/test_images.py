"""docker load (docker-save and OCI-layout archives), docker images, rmi of an image in use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from berth_testsupport import images as testimages
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _untag_what_we_load(berth: Berth) -> Iterator[None]:
    """The test images share one image id with other busybox builds: leave no extra tags behind,
    or another test's `docker rmi <tag>` would only untag instead of deleting."""
    yield
    for ref in ("berth-test/saved:v1", "berth-test/oci:v1", "berth-test/inuse:v1"):
        berth.docker("rmi", ref)


def _repo_tags(berth: Berth) -> set[str]:
    return set(berth.docker_ok("images", "--format", "{{.Repository}}:{{.Tag}}").split())


def test_load_docker_save_archive(berth: Berth) -> None:
    img = testimages.docker_save_archive(["berth-test/saved:v1"])
    path = img.write(berth.base / "saved.tar")
    out = berth.docker_ok("load", "-i", str(path), timeout=60)
    assert "berth-test/saved:v1" in out
    assert "berth-test/saved:v1" in _repo_tags(berth)
    ids = berth.docker_ok("images", "--no-trunc", "--format", "{{.ID}}", "berth-test/saved:v1").split()
    assert ids == [img.image_id]
    # The loaded image runs (its config has Cmd and PATH).
    res = berth.docker("run", "--rm", "berth-test/saved:v1", "echo", "from-saved")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "from-saved\n"


def test_load_oci_archive(berth: Berth) -> None:
    img = testimages.oci_layout_archive("berth-test/oci:v1")
    path = img.write(berth.base / "oci.tar")
    out = berth.docker_ok("load", "-i", str(path), timeout=60)
    assert "berth-test/oci:v1" in out
    assert "berth-test/oci:v1" in _repo_tags(berth)
    ids = berth.docker_ok("images", "--no-trunc", "--format", "{{.ID}}", "berth-test/oci:v1").split()
    assert ids == [img.image_id]


def test_rmi_image_in_use(berth: Berth) -> None:
    img = testimages.docker_save_archive(["berth-test/inuse:v1"])
    path = img.write(berth.base / "inuse.tar")
    berth.docker_ok("load", "-i", str(path), timeout=60)
    cid = berth.docker_ok("create", "berth-test/inuse:v1", "true").strip()
    try:
        res = berth.docker("rmi", img.image_id)
        assert res.returncode != 0
        assert "image is being used" in res.stderr
    finally:
        berth.docker("rm", "-f", cid)
    berth.docker_ok("rmi", "berth-test/inuse:v1")
    assert "berth-test/inuse:v1" not in _repo_tags(berth)

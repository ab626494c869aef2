"""docker save (GET /images/get, GET /images/{name}/get): moby 25's layout, read back by
`docker load` on berth and on a real dockerd 20.10, and by skopeo; dockerd's saves load on berth."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from berth_testsupport import images as testimages
from containerised import Dockerd, scratch_dockerd
from harness import Berth

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MULTI = "berth-test/savemulti:v1"
MULTI2 = "berth-test/savemulti:v2"
OTHER = "berth-test/saveother:v1"


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    """A scratch dockerd 20.10, the other side of the round trips."""
    with scratch_dockerd() as d:
        yield d


@pytest.fixture
def saved_images(berth: Berth) -> Iterator[testimages.BuiltImage]:
    """A two-layer image with gzip layers under two tags, and a one-layer image."""
    multi = testimages.multilayer_docker_save([MULTI, MULTI2], gzip_layers=True)
    berth.docker_ok("load", "-i", str(multi.write(berth.base / "multi.tar")), timeout=60)
    other = testimages.docker_save_archive([OTHER], env=["SAVED=other"])
    berth.docker_ok("load", "-i", str(other.write(berth.base / "other.tar")), timeout=60)
    try:
        yield multi
    finally:
        berth.docker("rmi", "-f", MULTI, MULTI2, OTHER)


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            if f is not None and not m.name.endswith(".tar") and m.size < 1 << 16:
                out[m.name] = f.read()
        return out


def _ids(berth: Berth, *refs: str) -> list[str]:
    return [berth.docker_ok("image", "inspect", "-f", "{{.Id}}", r).strip() for r in refs]


def test_save_layout_and_load_back(berth: Berth, saved_images: testimages.BuiltImage) -> None:
    out = berth.base / "both.tar"
    berth.docker_ok("save", "-o", str(out), "berth-test/savemulti", OTHER, timeout=120)
    files = _members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(files["manifest.json"])
    by_tags = {tuple(sorted(e["RepoTags"])): e for e in manifest}
    assert set(by_tags) == {(MULTI, MULTI2), (OTHER,)}
    multi = by_tags[(MULTI, MULTI2)]
    assert multi["Config"] == "blobs/sha256/" + saved_images.image_id.removeprefix("sha256:")
    # Layers are the uncompressed tars: their digest is the diffID.
    assert multi["Layers"] == ["blobs/sha256/" + d.removeprefix("sha256:") for d in saved_images.diff_ids]
    index = json.loads(files["index.json"])
    names = sorted(m["annotations"]["io.containerd.image.name"] for m in index["manifests"])
    assert names == sorted([f"docker.io/{OTHER}", f"docker.io/{MULTI}", f"docker.io/{MULTI2}"])
    top = saved_images.diff_ids[-1].removeprefix("sha256:")
    assert json.loads(files["repositories"])["berth-test/savemulti"] == {"v1": top, "v2": top}

    before = _ids(berth, MULTI, OTHER)
    berth.docker_ok("rmi", "-f", MULTI, MULTI2, OTHER)
    loaded = berth.docker_ok("load", "-i", str(out), timeout=120)
    assert f"Loaded image: {MULTI}" in loaded and f"Loaded image: {OTHER}" in loaded
    assert _ids(berth, MULTI, OTHER) == before
    res = berth.docker("run", "--rm", MULTI, "cat", "/layer2.txt")
    assert res.returncode == 0, res.stderr


def test_save_errors_are_dockerd_words(berth: Berth, busybox_image: str) -> None:
    res = berth.docker("save", "-o", str(berth.base / "x.tar"), "berth-test/nosuchsave")
    assert res.returncode != 0
    assert "No such image: berth-test/nosuchsave" in res.stderr
    res = berth.docker("save", "-o", str(berth.base / "x.tar"), "busybox:nosuchtag")
    assert res.returncode != 0
    assert "reference does not exist" in res.stderr


def test_save_by_id_and_docker_py(berth: Berth, busybox_image: str) -> None:
    image_id = _ids(berth, busybox_image)[0]
    client = docker.DockerClient(base_url=berth.docker_host, timeout=120)
    try:
        path = berth.base / "pysave.tar"
        with path.open("wb") as f:
            for chunk in client.images.get(image_id).save(named=False):
                f.write(chunk)
        files = _members(path)
        assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
        assert "repositories" not in files
        path2 = berth.base / "pysave-named.tar"
        with path2.open("wb") as f:
            for chunk in client.images.get(busybox_image).save(named=True):
                f.write(chunk)
        assert json.loads(_members(path2)["manifest.json"])[0]["RepoTags"] == [busybox_image]
    finally:
        client.close()


def test_berth_save_loads_on_dockerd_and_skopeo(
    berth: Berth, dockerd: Dockerd, saved_images: testimages.BuiltImage
) -> None:
    out = berth.base / "to-dockerd.tar"
    berth.docker_ok("save", "-o", str(out), MULTI, MULTI2, timeout=120)
    loaded = berth.docker("load", "-i", str(out), host=dockerd.host, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded image: {MULTI}" in loaded.stdout and f"Loaded image: {MULTI2}" in loaded.stdout
    got = berth.docker("image", "inspect", "-f", "{{.Id}}", MULTI, host=dockerd.host)
    assert got.stdout.strip() == saved_images.image_id
    ran = berth.docker("run", "--rm", "--network", "none", MULTI, "cat", "/layer2.txt", host=dockerd.host)
    assert ran.returncode == 0, ran.stderr
    if shutil.which("skopeo"):
        for transport in (f"docker-archive:{out}:{MULTI}", f"oci-archive:{out}:v1"):
            res = subprocess.run(["skopeo", "inspect", "--config", transport], capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, f"{transport}: {res.stderr}"
            assert json.loads(res.stdout)["rootfs"]["diff_ids"] == saved_images.diff_ids


def test_dockerd_save_loads_on_berth(berth: Berth, dockerd: Dockerd) -> None:
    tar = berth.base / "dd-rootfs.tar"
    tar.write_bytes(testimages.busybox_rootfs_tar({"/from-dockerd.txt": b"dd\n"}))
    ref = "berth-test/fromdockerd:v1"
    res = berth.docker("import", str(tar), ref, host=dockerd.host, timeout=120)
    assert res.returncode == 0, res.stderr
    out = berth.base / "from-dockerd.tar"
    res = berth.docker("save", "-o", str(out), ref, host=dockerd.host, timeout=120)
    assert res.returncode == 0, res.stderr
    dd_id = berth.docker("image", "inspect", "-f", "{{.Id}}", ref, host=dockerd.host).stdout.strip()
    try:
        berth.docker_ok("load", "-i", str(out), timeout=120)
        assert _ids(berth, ref) == [dd_id]
        # and back out of berth, into dockerd again, as the same image
        again = berth.base / "back.tar"
        berth.docker_ok("save", "-o", str(again), ref, timeout=120)
        berth.docker("rmi", ref, host=dockerd.host)
        res = berth.docker("load", "-i", str(again), host=dockerd.host, timeout=120)
        assert res.returncode == 0, res.stderr
        back = berth.docker("image", "inspect", "-f", "{{.Id}}", ref, host=dockerd.host).stdout.strip()
        assert back == dd_id
    finally:
        berth.docker("rmi", "-f", ref)

"""The test-image builder makes well-formed, reproducible archives."""

from __future__ import annotations

import io
import json
import tarfile

from berth_testsupport import images as testimages


def _members(data: bytes) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            f = tar.extractfile(m)
            out[m.name] = f.read() if f else None
    return out


def test_busybox_rootfs_has_shell_users_and_dirs() -> None:
    with tarfile.open(fileobj=io.BytesIO(testimages.busybox_rootfs_tar())) as tar:
        names = {m.name: m for m in tar}
    assert names["bin/sh"].issym() and names["bin/sh"].linkname == "/bin/busybox"
    assert names["bin/busybox"].isfile() and names["bin/busybox"].mode == 0o755
    assert names["tmp"].mode == 0o1777
    assert names["home/user"].uid == 1000
    assert "etc/passwd" in names and "etc/group" in names and "root" in names


def test_docker_save_is_reproducible_and_consistent() -> None:
    a = testimages.docker_save_archive(["bb:1"])
    assert a.data == testimages.docker_save_archive(["bb:1"]).data
    files = _members(a.data)
    manifest = json.loads(files["manifest.json"] or b"")
    assert manifest[0]["RepoTags"] == ["bb:1"]
    config = files[manifest[0]["Config"]]
    assert config is not None and testimages.sha256(config) == a.image_id
    assert json.loads(config)["rootfs"]["diff_ids"] == a.diff_ids


def test_oci_layout_and_multilayer() -> None:
    oci = _members(testimages.oci_layout_archive("busybox:latest").data)
    index = json.loads(oci["index.json"] or b"")
    ann = index["manifests"][0]["annotations"]
    assert ann["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert "oci-layout" in oci
    multi = testimages.multilayer_docker_save()
    assert len(multi.diff_ids) == 2

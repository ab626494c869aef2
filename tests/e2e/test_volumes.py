"""Volumes with the real docker CLI: named, anonymous, bind, tmpfs, read-only; `docker volume`."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest
from harness import Berth, unique_name

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_named_volume_survives_rm_and_is_in_use(berth: Berth, busybox_image: str) -> None:
    vol = unique_name("data")
    ctr = unique_name("writer")
    try:
        berth.docker_ok(
            "run", "--name", ctr, "-v", f"{vol}:/data", busybox_image,
            "sh", "-c", "echo kept > /data/f",
        )  # fmt: skip
        [info] = json.loads(berth.docker_ok("inspect", ctr))
        [mount] = info["Mounts"]
        assert (mount["Type"], mount["Name"], mount["Destination"]) == ("volume", vol, "/data")
        assert mount["RW"] is True and mount["Driver"] == "local"
        # In use by a (stopped) container: Docker's 409.
        busy = berth.docker("volume", "rm", vol)
        assert busy.returncode != 0 and "volume is in use" in busy.stderr, busy.stderr
        berth.docker_ok("rm", "-v", ctr)  # -v drops anonymous volumes only
        out = berth.docker_ok("run", "--rm", "-v", f"{vol}:/data", busybox_image, "cat", "/data/f")
        assert out == "kept\n"
        [vinfo] = json.loads(berth.docker_ok("volume", "inspect", vol))
        assert vinfo["Name"] == vol and vinfo["Driver"] == "local"
        assert (Path(vinfo["Mountpoint"]) / "f").read_text() == "kept\n"
        assert vol in berth.docker_ok("volume", "ls", "-q").split()
        # :ro cannot be written.
        ro = berth.docker(
            "run", "--rm", "-v", f"{vol}:/data:ro", busybox_image, "sh", "-c", "echo x > /data/g"
        )
        assert ro.returncode != 0 and "Read-only file system" in ro.stderr, ro.stderr
    finally:
        berth.docker("rm", "-f", ctr)
        berth.docker("volume", "rm", "-f", vol)
    assert vol not in berth.docker_ok("volume", "ls", "-q").split()
    missing = berth.docker("volume", "inspect", vol)
    assert missing.returncode != 0 and "no such volume" in missing.stderr


def test_volume_api_create_labels_prune(berth: Berth, busybox_image: str) -> None:
    vol = unique_name("lab")
    berth.docker_ok("volume", "create", "--label", "team=berth", vol)
    try:
        assert berth.docker_ok("volume", "ls", "-q", "--filter", "label=team=berth").split() == [
            vol
        ]
        # An anonymous volume from `-v /path` is removed by prune; the named one is kept.
        ctr = berth.docker_ok("create", "-v", "/anon", busybox_image, "true").strip()
        [info] = json.loads(berth.docker_ok("inspect", ctr))
        anon = info["Mounts"][0]["Name"]
        assert len(anon) == 64
        berth.docker_ok("rm", ctr)  # without -v the anonymous volume stays
        assert anon in berth.docker_ok("volume", "ls", "-q").split()
        pruned = berth.docker_ok("volume", "prune", "-f")
        assert anon in pruned
        remaining = berth.docker_ok("volume", "ls", "-q").split()
        assert anon not in remaining and vol in remaining
    finally:
        berth.docker("volume", "rm", "-f", vol)


def test_copy_up_bind_tmpfs_and_read_only(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    # Copy-up: an empty named volume over /etc starts with the image's /etc.
    vol = unique_name("etc")
    try:
        out = berth.docker_ok(
            "run", "--rm", "-v", f"{vol}:/etc", busybox_image, "cat", "/etc/passwd"
        )
        assert "root:" in out
    finally:
        berth.docker("volume", "rm", "-f", vol)
    # A bind mount, read-write and read-only (--mount).
    host = tmp_path / "share"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    out = berth.docker_ok(
        "run", "--rm", "-v", f"{host}:/share", busybox_image,
        "sh", "-c", "cat /share/in.txt; echo back > /share/out.txt",
    )  # fmt: skip
    assert out == "from host\n"
    assert (host / "out.txt").read_text() == "back\n"
    ro = berth.docker(
        "run", "--rm", "--mount", f"type=bind,source={host},target=/share,readonly",
        busybox_image, "touch", "/share/x",
    )  # fmt: skip
    assert ro.returncode != 0 and not (host / "x").exists()
    missing = berth.docker(
        "run",
        "--rm",
        "--mount",
        f"type=bind,source={tmp_path}/nope,target=/x",
        busybox_image,
        "true",
    )
    assert "bind source path does not exist" in missing.stderr
    # tmpfs is empty at each start.
    ctr = unique_name("tmp")
    try:
        berth.docker_ok(
            "run", "--name", ctr, "--tmpfs", "/scratch", "--mount", "type=tmpfs,target=/t2",
            busybox_image, "sh", "-c", "ls -A /scratch /t2; touch /scratch/a /t2/b",
        )  # fmt: skip
        berth.docker_ok("start", ctr)
        logs = berth.docker_ok("logs", ctr)
        assert "a" not in logs.split() and "b" not in logs.split(), logs
        mounts = berth.docker_ok(
            "run", "--rm", "--tmpfs", "/scratch", busybox_image, "grep", "/scratch", "/proc/mounts"
        )
        assert "tmpfs" in mounts and "nosuid" in mounts
    finally:
        berth.docker("rm", "-f", ctr)
    # --read-only root.
    rofs = berth.docker("run", "--rm", "--read-only", busybox_image, "touch", "/x")
    assert rofs.returncode != 0 and "Read-only file system" in rofs.stderr


def import_symlink_image(berth: Berth, ref: str, link: str) -> str:
    """busybox plus `/target` → link: what a hostile image ships."""
    from berth_testsupport import images as testimages

    raw = io.BytesIO(testimages.busybox_rootfs_tar())
    out = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("target")
        info.type = tarfile.SYMTYPE
        info.linkname = link
        dst.addfile(info)
    tar = berth.base / f"{ref.replace(':', '_')}.tar"
    tar.write_bytes(out.getvalue())
    berth.docker_ok("import", str(tar), ref, timeout=120)
    return ref


@pytest.mark.parametrize("link", ["/", "../../.."])
def test_bind_target_symlink_stays_inside_rootfs(
    berth: Berth, busybox_image: str, tmp_path: Path, link: str
) -> None:
    """A mount target that is a symlink inside the image ("/target" → "/" or "../../..")
    resolves inside the container's root, never on the host."""
    image = import_symlink_image(berth, f"evil-link:{uuid.uuid4().hex[:8]}", link)
    src = tmp_path / "src"
    src.mkdir()
    (src / "marker").write_text("m\n")
    escape = f"berth-escape-{uuid.uuid4().hex[:8]}"
    try:
        out = berth.docker_ok(
            "run", "--rm", "-v", f"{src}:/target/{escape}", image, "cat", f"/{escape}/marker"
        )
        assert out == "m\n"  # the mount landed at /<escape> inside the container
        for host_dir in (Path("/"), berth.exec_root, berth.exec_root / "agent", berth.data_root):
            assert not (host_dir / escape).exists(), host_dir / escape
    finally:
        berth.docker("rmi", image)


def test_copy_up_recreates_device_nodes_and_fifos(berth: Berth) -> None:
    """An image's device node and FIFO under a volume's target are recreated in the volume
    (mknod, as moby's copy), not read: before, the FIFO hung the agent's copy for good (and a
    `c 1:5` filled the disk: the unit test in runtime-agent covers that one)."""
    from berth_testsupport import images as testimages

    raw = io.BytesIO(testimages.busybox_rootfs_tar())
    out = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, kind, mode in [("data", tarfile.DIRTYPE, 0o755), ("data/null", tarfile.CHRTYPE, 0o666),
                                 ("data/fifo", tarfile.FIFOTYPE, 0o640)]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.devmajor, info.devminor = kind, mode, 1, 3
            dst.addfile(info)
    ref = f"special-files:{uuid.uuid4().hex[:8]}"
    tar = berth.base / f"{ref.replace(':', '_')}.tar"
    tar.write_bytes(out.getvalue())
    berth.docker_ok("import", str(tar), ref, timeout=120)
    vol = unique_name("special")
    try:
        listing = berth.docker_ok(
            "run", "--rm", "-v", f"{vol}:/data", ref, "stat", "-c", "%n %F %t:%T %a", "/data/null", "/data/fifo",
            timeout=60,
        )  # fmt: skip
        assert listing.splitlines() == [
            "/data/null character special file 1:3 666",
            "/data/fifo fifo 0:0 640",
        ], listing
    finally:
        berth.docker("volume", "rm", "-f", vol)
        berth.docker("rmi", ref)


def test_docker_cp_both_ways(berth: Berth, busybox_image: str, tmp_path: Path) -> None:
    vol = unique_name("cpvol")
    ctr = unique_name("cp")
    try:
        berth.docker_ok(
            "run", "-d", "--name", ctr, "-v", f"{vol}:/vol", busybox_image, "sleep", "300"
        )  # fmt: skip
        src = tmp_path / "in"
        src.mkdir()
        (src / "a.txt").write_text("alpha\n")
        # Into the running container (rootfs and a volume), then back out.
        berth.docker_ok("cp", str(src / "a.txt"), f"{ctr}:/tmp/a.txt")
        berth.docker_ok("cp", str(src), f"{ctr}:/vol/")
        out = berth.docker_ok("exec", ctr, "cat", "/tmp/a.txt", "/vol/in/a.txt")
        assert out == "alpha\nalpha\n"
        berth.docker_ok("cp", f"{ctr}:/etc/passwd", str(tmp_path / "passwd"))
        assert "root:" in (tmp_path / "passwd").read_text()
        # A stopped container: its snapshot with the volume on top.
        berth.docker_ok("stop", "-t", "0", ctr, timeout=30)
        berth.docker_ok("cp", f"{ctr}:/vol/in", str(tmp_path / "back"))
        assert (tmp_path / "back" / "a.txt").read_text() == "alpha\n"
        (src / "b.txt").write_text("beta\n")
        berth.docker_ok("cp", str(src / "b.txt"), f"{ctr}:/b.txt")
        berth.docker_ok("cp", f"{ctr}:/b.txt", str(tmp_path / "b-back.txt"))
        assert (tmp_path / "b-back.txt").read_text() == "beta\n"
        missing = berth.docker("cp", f"{ctr}:/no/such", str(tmp_path / "x"))
        assert missing.returncode != 0 and "Could not find the file" in missing.stderr
    finally:
        berth.docker("rm", "-f", ctr)
        berth.docker("volume", "rm", "-f", vol)


@pytest.mark.parametrize("link", ["/", "../../.."])
def test_docker_cp_through_symlink_stays_inside(berth: Berth, tmp_path: Path, link: str) -> None:
    """`docker cp` to and from `/target` (a symlink to / or ../../..) stays inside the
    container: nothing is written to, or read from, the host's root."""
    image = import_symlink_image(berth, f"evil-cp:{uuid.uuid4().hex[:8]}", link)
    ctr = unique_name("evilcp")
    name = f"berth-cp-escape-{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    try:
        berth.docker_ok("create", "--name", ctr, image, "true")
        payload = tmp_path / name
        payload.write_text("x\n")
        berth.docker_ok("cp", str(payload), f"{ctr}:/target/")
        for host_dir in (
            Path("/"),
            berth.exec_root,
            berth.data_root,
            berth.data_root / "lifecycle",
        ):
            assert not (host_dir / name).exists(), host_dir / name
        # Reading through the link sees the container's file, not the host's tmp_path.
        berth.docker_ok("cp", f"{ctr}:/target/{name}", str(tmp_path / "out"))
        assert (tmp_path / "out").read_text() == "x\n"
        leak = berth.docker("cp", f"{ctr}:/target{secret}", str(tmp_path / "leak"))
        assert leak.returncode != 0 and not (tmp_path / "leak").exists()
    finally:
        berth.docker("rm", "-f", ctr)
        berth.docker("rmi", image)


def test_volumes_from(berth: Berth, busybox_image: str) -> None:
    src = unique_name("src")
    vol = unique_name("shared")
    try:
        berth.docker_ok(
            "run", "--name", src, "-v", f"{vol}:/shared", busybox_image,
            "sh", "-c", "echo from-src > /shared/f",
        )  # fmt: skip
        out = berth.docker_ok(
            "run", "--rm", "--volumes-from", f"{src}:ro", busybox_image,
            "sh", "-c", "cat /shared/f; touch /shared/g 2>/dev/null || echo read-only",
        )  # fmt: skip
        assert out == "from-src\nread-only\n"
    finally:
        berth.docker("rm", "-f", src)
        berth.docker("volume", "rm", "-f", vol)

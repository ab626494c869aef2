"""The confined `docker cp` child: Docker's stat bits and tar naming, and its confinement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from berth_lifecycle.archive_child import arcname, go_mode
from berth_testsupport.images import file_tar


def test_go_mode_and_arcname(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    assert go_mode(os.lstat(d)) == (1 << 31) | 0o755
    os.symlink("d", tmp_path / "l")
    assert go_mode(os.lstat(tmp_path / "l")) & (1 << 27)
    assert arcname("/etc/hostname") == "hostname"
    assert arcname("/data/") == "data"
    assert arcname("/data/.") == "."


def test_stat_through_symlink_stays_in_root(tmp_path: Path) -> None:
    """A chrooted stat of /target/etc/passwd with /target → / sees the root's own file."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside\n")
    os.symlink("/", root / "target")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = {
        "mode": "stat",
        "path": "/target/etc/passwd",
        "rootfs": {"type": "bind", "source": str(root), "options": []},
        "scratch": str(scratch),
    }
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["size"] == len("inside\n")
    # dockerd's stat header: the mtime as Go's RFC3339Nano (fraction trimmed, nanoseconds kept).
    os.utime(root / "etc" / "passwd", ns=(0, 1_700_000_000_500_000_000))
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert json.loads(res.stdout)["mtime"] == "2023-11-14T22:13:20.5Z"
    spec["path"] = "/nope"
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts in a private namespace need root")
def test_put_into_a_volume_of_a_container_that_never_ran(tmp_path: Path) -> None:
    """A never-started container has no /vol1 in its layer yet: the copy makes the mount point
    (as moby's mountVolumes does) and lands in the volume, not in the layer."""
    root, volume, bind_file, scratch = (tmp_path / n for n in ("root", "vol", "f", "scratch"))
    for d in (root, volume, scratch):
        d.mkdir()
    bind_file.write_text("bound\n")
    spec = {
        "mode": "put",
        "path": "/vol1",
        "proc_root": "",
        "scratch": str(scratch),
        "rootfs": {"type": "bind", "source": str(root), "options": []},
        "mounts": [
            {"source": str(volume), "target": "/vol1", "readonly": False},
            {"source": str(bind_file), "target": "/etc/bound", "readonly": True},
        ],
    }
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        input=file_tar("f.txt", b"hello"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert (volume / "f.txt").read_bytes() == b"hello"
    assert (root / "vol1").is_dir() and not list((root / "vol1").iterdir())
    assert (root / "etc" / "bound").is_file()  # the file bind's mount point, empty in the layer
    assert (root / "etc" / "bound").read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts in a private namespace need root")
def test_volume_target_through_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    """A volume target behind a symlink loop is ELOOP (filepath-securejoin's answer), not the
    container's root: the copy used to give up resolving and bind the volume over `/`."""
    root, volume, scratch = (tmp_path / n for n in ("root", "vol", "scratch"))
    for d in (root, volume, scratch):
        d.mkdir()
    (root / "rootfile").write_text("in the layer\n")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    spec = {
        "mode": "stat",
        "path": "/rootfile",
        "scratch": str(scratch),
        "rootfs": {"type": "bind", "source": str(root), "options": []},
        "mounts": [{"source": str(volume), "target": "/loop1/x", "readonly": False}],
    }
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1 and b"too many levels of symbolic links" in res.stderr, res

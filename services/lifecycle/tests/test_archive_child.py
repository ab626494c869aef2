"""The confined `docker cp` child: Docker's stat bits and tar naming, and its confinement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from berth_lifecycle.archive_child import arcname, go_mode


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
    spec["path"] = "/nope"
    res = subprocess.run(
        [sys.executable, "-I", "-m", "berth_lifecycle.archive_child", json.dumps(spec)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2

"""Paths resolved inside a container's root never leave it, whatever its symlinks say."""

from __future__ import annotations

import os
from pathlib import Path

from berth_common.securejoin import secure_join


def test_symlinks_stay_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/", root / "abs")
    os.symlink("../../..", root / "rel")
    os.symlink("/etc", root / "etclink")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert secure_join(str(root), "/abs/etc/passwd") == str(root / "etc" / "passwd")
    assert secure_join(str(root), "rel/x") == str(root / "x")
    assert secure_join(str(root), "/../../etc") == str(root / "etc")
    assert secure_join(str(root), "/etclink/hosts") == str(root / "etc" / "hosts")
    assert secure_join(str(root), "/") == str(root)
    try:
        secure_join(str(root), "/loop1/x")
    except OSError as exc:
        assert exc.errno == 40
    else:
        raise AssertionError("a symlink loop must fail")

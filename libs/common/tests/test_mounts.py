from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from berth_common.mounts import is_mountpoint, mountinfo, unescape


def test_unescape() -> None:
    assert unescape(r"/tmp/a\040b") == "/tmp/a b"
    assert unescape(r"/a\134b\011c") == "/a\\b\tc"
    assert unescape("/plain") == "/plain"
    assert unescape("/x\\") == "/x\\"
    assert unescape("/x\\04") == "/x\\04"


def test_mountinfo_of_this_process() -> None:
    points = mountinfo()
    assert any(point == "/" for point, _, _ in points)
    assert is_mountpoint("/proc") and not is_mountpoint("/proc/self")
    with pytest.raises(OSError):
        mountinfo(2**22 + 1)  # above pid_max's ceiling: no such process


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")
def test_mount_in_a_private_namespace(tmp_path: Path) -> None:
    """What a confined child does: a namespace of its own, a tmpfs, its options seen, gone after."""
    target = tmp_path / "a b"
    target.mkdir()
    code = (
        "import sys\n"
        "from berth_common.mounts import MS_NOSUID, is_mountpoint, mount, mountinfo, private_mount_namespace, umount\n"
        "t = sys.argv[1]\n"
        "private_mount_namespace()\n"
        "mount('tmpfs', t, 'tmpfs', MS_NOSUID, 'size=1m')\n"
        "assert is_mountpoint(t)\n"
        "assert [m for m in mountinfo() if m[0] == t][-1][1] == 'tmpfs'\n"
        "umount(t)\n"
        "assert not is_mountpoint(t)\n"
        "try:\n"
        "    umount(t)\n"
        "except OSError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, check=True)
    assert out.stdout.startswith(f"[Errno 22] umount {target}: Invalid argument"), out
    assert not is_mountpoint(str(target))

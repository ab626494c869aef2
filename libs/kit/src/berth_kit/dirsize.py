"""moby's directory.Size, shared by lifecycle (writable layers) and the engine (volumes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def directory_size(root: Path) -> int:
    """The sizes of everything but directories (a symlink counts its target's length, a
    whiteout 0), each inode once, never following a link."""
    seen: set[int] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or st.st_size == 0 or st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_size
    return total

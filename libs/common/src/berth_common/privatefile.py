"""Files that hold secrets (passwords, keys, the swarm's state), written in one way. Stdlib only."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, durable: bool = False) -> None:
    """Write atomically, readable only by its owner (never world- or group-readable, even for
    a moment: the temp file is created 0600). A reader sees the old file or the new one.
    durable: on disk before this returns (a key whose loss would lose data)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

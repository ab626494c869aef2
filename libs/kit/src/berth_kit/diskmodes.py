"""Modes of berth's roots and private files (moby's, after CVE-2021-41091).

A host user must not traverse into a container's rootfs (a setuid binary a container made would
run as root) nor read configs and databases (environment variables, secrets). dockerd makes its
data root 0710 and every subdirectory 0700/0710, config.v2.json 0600, volumes 0701; containerd
its root 0711 with 0700 subdirectories. Modes are set on every start, not only at creation, so
an install made before is fixed too.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_MODE = 0o711  # data and exec roots: traversable (the API socket lives there), not listable
PRIVATE_DIR_MODE = 0o700  # each service's own directory
PRIVATE_FILE_MODE = 0o600  # databases, bundles' config.json, logs, state files
VOLUMES_DIR_MODE = 0o701  # moby's <data-root>/volumes


def ensure_dir(path: Path, mode: int = PRIVATE_DIR_MODE) -> Path:
    """Create `path` (and parents) if needed and give it `mode`, whatever it had."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    os.chmod(path, mode)
    return path


def restrict_file(path: Path, mode: int = PRIVATE_FILE_MODE) -> None:
    """Give an existing file `mode`; a missing one is left missing."""
    try:
        os.chmod(path, mode)
    except FileNotFoundError:
        pass


def create_private_file(path: Path, mode: int = PRIVATE_FILE_MODE) -> None:
    """Make sure `path` exists with `mode` before anyone opens it with a default umask
    (SQLite then gives its -wal and -shm files the same mode as the database)."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, mode))
    os.chmod(path, mode)


def private_sqlite(path: Path) -> None:
    """A SQLite database and its -wal / -shm files: 0600, existing ones included."""
    create_private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        restrict_file(path.with_name(path.name + suffix))


def lock_down_roots(data_root: Path, exec_root: Path) -> None:
    """The data and exec roots: 0711 (containerd's root); each service makes its own 0700."""
    ensure_dir(data_root, ROOT_MODE)
    ensure_dir(exec_root, ROOT_MODE)

"""An install made before the modes were locked down is fixed when the engine starts."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from berth_engine.containers.store import RecordStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_existing_engine_dir_and_database_files_become_private(tmp_path: Path) -> None:
    engine = tmp_path / "engine"
    engine.mkdir(mode=0o755)
    os.chmod(engine, 0o755)
    db = engine / "engine.db"
    conn = sqlite3.connect(db)  # an old install: umask 022 gave 0644 files
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    for path in (db, engine / "engine.db-wal", engine / "engine.db-shm"):
        os.chmod(path, 0o644)
    store = RecordStore(db)
    try:
        assert _mode(engine) == 0o700
        for path in (db, engine / "engine.db-wal", engine / "engine.db-shm"):
            assert _mode(path) == 0o600, path
    finally:
        store.close()
        conn.close()


def test_new_database_files_are_private(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "engine" / "engine.db")
    try:
        names = sorted(p.name for p in (tmp_path / "engine").iterdir())
        assert "engine.db-wal" in names
        assert {n: _mode(tmp_path / "engine" / n) for n in names} == dict.fromkeys(names, 0o600)
    finally:
        store.close()

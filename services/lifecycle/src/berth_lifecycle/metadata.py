"""Metadata: images, names and snapshots in SQLite (WAL mode), the containerd bbolt's role.

Blocking: every method runs SQL on one connection under a lock; the async side calls these
through anyio.to_thread.run_sync. Multi-row changes are one transaction each.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,            -- sha256:<hex of config blob>
    config BLOB NOT NULL,           -- the image config JSON as stored in the content store
    diff_ids TEXT NOT NULL,         -- JSON list
    chain_ids TEXT NOT NULL,        -- JSON list, bottom first
    layer_blobs TEXT NOT NULL,      -- JSON list of content digests (may be shorter: import/load)
    size INTEGER NOT NULL,
    added TEXT NOT NULL,
    last_tag_time TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z'
);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,          -- full form: docker.io/library/busybox:latest or name@digest
    image_id TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS names_by_image ON names(image_id);
CREATE TABLE IF NOT EXISTS snapshots (
    n INTEGER PRIMARY KEY AUTOINCREMENT,   -- directory snapshots/<n>
    key TEXT UNIQUE NOT NULL,       -- chain id (committed), container id (active), extract-* (in progress)
    kind TEXT NOT NULL,             -- committed | active | extracting
    parent TEXT NOT NULL DEFAULT '',-- chain id of the layer below ('' for the bottom layer)
    image_id TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ImageRow:
    id: str
    config: bytes
    diff_ids: list[str]
    chain_ids: list[str]
    layer_blobs: list[str]
    size: int
    added: str
    last_tag_time: str


@dataclass(frozen=True)
class SnapshotRow:
    n: int
    key: str
    kind: str
    parent: str
    image_id: str
    size: int


class Metadata:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args))

    # --- images ----------------------------------------------------------------------------------

    @staticmethod
    def _image(row: tuple[object, ...]) -> ImageRow:
        return ImageRow(
            id=str(row[0]),
            config=bytes(row[1]) if isinstance(row[1], bytes | bytearray | memoryview) else str(row[1]).encode(),
            diff_ids=json.loads(str(row[2])),
            chain_ids=json.loads(str(row[3])),
            layer_blobs=json.loads(str(row[4])),
            size=int(row[5]),  # type: ignore[call-overload]
            added=str(row[6]),
            last_tag_time=str(row[7]),
        )

    _IMAGE_COLS = "id, config, diff_ids, chain_ids, layer_blobs, size, added, last_tag_time"

    def get_image(self, image_id: str) -> ImageRow | None:
        rows = self._query(f"SELECT {self._IMAGE_COLS} FROM images WHERE id = ?", (image_id,))
        return self._image(rows[0]) if rows else None

    def images(self) -> list[ImageRow]:
        return [self._image(r) for r in self._query(f"SELECT {self._IMAGE_COLS} FROM images")]

    def image_ids_with_prefix(self, hex_prefix: str) -> list[str]:
        # Prefixes are validated as hex by the caller, so LIKE has no wildcards to worry about.
        return [str(r[0]) for r in self._query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hex_prefix}%",))]

    def put_image(self, row: ImageRow, names: list[str], now: str) -> dict[str, str]:
        """Store the image (if new) and point names at it; returns name → image id it replaced."""
        replaced: dict[str, str] = {}
        with self._tx() as db:
            db.execute(
                f"INSERT OR IGNORE INTO images ({self._IMAGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.config,
                    json.dumps(row.diff_ids),
                    json.dumps(row.chain_ids),
                    json.dumps(row.layer_blobs),
                    row.size,
                    row.added,
                    row.last_tag_time,
                ),
            )
            for name in names:
                old = db.execute("SELECT image_id FROM names WHERE name = ?", (name,)).fetchone()
                if old and old[0] != row.id:
                    replaced[name] = str(old[0])
                db.execute(
                    "INSERT OR REPLACE INTO names (name, image_id, created) VALUES (?, ?, ?)",
                    (name, row.id, now),
                )
            if names:
                db.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now, row.id))
        return replaced

    def replace_layer_blob(self, old: str, new: str) -> None:
        """Every image whose layer was stored as blob `old` now names `new` (the same layer,
        compressed once for a push and kept)."""
        with self._tx() as db:
            for image_id, blobs_json in db.execute("SELECT id, layer_blobs FROM images").fetchall():
                blobs = json.loads(str(blobs_json))
                if old in blobs:
                    blobs = [new if b == old else b for b in blobs]
                    db.execute("UPDATE images SET layer_blobs = ? WHERE id = ?", (json.dumps(blobs), image_id))

    def set_name(self, name: str, image_id: str, now: str) -> str:
        """Point name at image_id; returns the image id it pointed at before ('' if none)."""
        with self._tx() as db:
            old = db.execute("SELECT image_id FROM names WHERE name = ?", (name,)).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO names (name, image_id, created) VALUES (?, ?, ?)",
                (name, image_id, now),
            )
            db.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now, image_id))
        return str(old[0]) if old else ""

    def remove_name(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM names WHERE name = ?", (name,))

    def lookup_name(self, name: str) -> str:
        rows = self._query("SELECT image_id FROM names WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else ""

    def names_of(self, image_id: str) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT name FROM names WHERE image_id = ? ORDER BY name", (image_id,))]

    def all_names(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, image_id in self._query("SELECT name, image_id FROM names ORDER BY name"):
            out.setdefault(str(image_id), []).append(str(name))
        return out

    def delete_image(self, image_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM names WHERE image_id = ?", (image_id,))
            db.execute("DELETE FROM images WHERE id = ?", (image_id,))

    # --- snapshots -------------------------------------------------------------------------------

    _SNAP_COLS = "n, key, kind, parent, image_id, size"

    @staticmethod
    def _snap(row: tuple[object, ...]) -> SnapshotRow:
        return SnapshotRow(
            n=int(row[0]),  # type: ignore[call-overload]
            key=str(row[1]),
            kind=str(row[2]),
            parent=str(row[3]),
            image_id=str(row[4]),
            size=int(row[5]),  # type: ignore[call-overload]
        )

    def get_snapshot(self, key: str) -> SnapshotRow | None:
        rows = self._query(f"SELECT {self._SNAP_COLS} FROM snapshots WHERE key = ?", (key,))
        return self._snap(rows[0]) if rows else None

    def snapshots(self, kind: str = "") -> list[SnapshotRow]:
        if kind:
            rows = self._query(f"SELECT {self._SNAP_COLS} FROM snapshots WHERE kind = ?", (kind,))
        else:
            rows = self._query(f"SELECT {self._SNAP_COLS} FROM snapshots")
        return [self._snap(r) for r in rows]

    def add_snapshot(self, key: str, kind: str, parent: str, image_id: str, now: str) -> SnapshotRow:
        """Insert a snapshot row; raises sqlite3.IntegrityError if key exists."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO snapshots (key, kind, parent, image_id, created) VALUES (?, ?, ?, ?, ?)",
                (key, kind, parent, image_id, now),
            )
            n = int(cur.lastrowid or 0)
        return SnapshotRow(n=n, key=key, kind=kind, parent=parent, image_id=image_id, size=0)

    def commit_snapshot(self, n: int, key: str, size: int) -> bool:
        """Turn the extracting snapshot n into committed `key`; False if key was committed meanwhile."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM snapshots WHERE key = ?", (key,)).fetchone():
                return False
            db.execute(
                "UPDATE snapshots SET key = ?, kind = 'committed', size = ? WHERE n = ?", (key, size, n)
            )
        return True

    def delete_snapshot(self, n: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM snapshots WHERE n = ?", (n,))

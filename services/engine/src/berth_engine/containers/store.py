"""Container records in SQLite (WAL), mirrored in memory so lookups and lists cost no I/O.

Every change is written to disk before the caller replies (durability first); the write runs in a
worker thread so the event loop keeps serving. Writes are serialised by one lock and encode the
record *inside* the lock, so the last write always carries the latest state.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_kit.diskmodes import ensure_dir, private_sqlite

from berth_engine.containers.records import Record, decode_record, encode_record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    created  TEXT NOT NULL,
    node     TEXT NOT NULL,
    image_id TEXT NOT NULL,
    status   TEXT NOT NULL,
    record   BLOB NOT NULL
);
"""


def name_conflict(name: str, owner: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


class RecordStore:
    def __init__(self, path: Path) -> None:
        ensure_dir(path.parent)  # <data-root>/engine: 0700, fixed on every start
        private_sqlite(path)  # records hold environments (secrets): 0600, -wal and -shm too
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a record acknowledged to a client survives a power cut, not just a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db_lock = threading.Lock()  # one connection, used from worker threads
        self._write_lock = anyio.Lock()
        self._by_id: dict[str, Record] = {}
        self._by_name: dict[str, str] = {}
        self._reserved: dict[str, str] = {}  # names held by creates still in progress
        for (blob,) in self._db.execute("SELECT record FROM containers"):
            rec = decode_record(blob)
            self._by_id[rec.id] = rec
            self._by_name[rec.name] = rec.id

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    # --- names -----------------------------------------------------------------------------------

    def name_taken(self, name: str) -> bool:
        return name in self._by_name or name in self._reserved

    def reserve_name(self, name: str, container_id: str) -> None:
        owner = self._by_name.get(name) or self._reserved.get(name)
        if owner is not None:
            raise name_conflict(name, owner)
        self._reserved[name] = container_id

    def release_name(self, name: str) -> None:
        self._reserved.pop(name, None)

    # --- reads (memory only) ---------------------------------------------------------------------

    def all(self) -> list[Record]:
        return list(self._by_id.values())

    def get(self, container_id: str) -> Record | None:
        return self._by_id.get(container_id)

    def lookup(self, ref: str) -> Record:
        """Docker's order: full id, exact name (with or without "/"), then a unique id prefix."""
        if not ref:
            raise NotFound(f"No such container: {ref}")
        rec = self._by_id.get(ref)
        if rec is not None:
            return rec
        cid = self._by_name.get(ref[1:] if ref.startswith("/") else ref)
        if cid is not None:
            return self._by_id[cid]
        matches = [r for r in self._by_id.values() if r.id.startswith(ref.lower())]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        if not matches:
            raise NotFound(f"No such container: {ref}")
        return matches[0]

    # --- writes (disk first, then memory) --------------------------------------------------------

    async def insert(self, rec: Record) -> None:
        owner = self._by_name.get(rec.name)
        if owner is not None and owner != rec.id:
            raise name_conflict(rec.name, owner)
        async with self._write_lock:
            blob = encode_record(rec)
            await anyio.to_thread.run_sync(self._insert_sync, rec, blob)
        self._by_id[rec.id] = rec
        self._by_name[rec.name] = rec.id
        self._reserved.pop(rec.name, None)

    async def save(self, rec: Record) -> None:
        """Persist the current state of a record already in the store."""
        if rec.id not in self._by_id:
            return  # removed meanwhile: nothing to resurrect
        async with self._write_lock:
            if rec.id not in self._by_id:
                return
            blob = encode_record(rec)
            await anyio.to_thread.run_sync(self._update_sync, rec, blob)

    async def rename(self, rec: Record, new_name: str) -> None:
        """Give rec a new name (the caller validated it); Conflict if someone has it."""
        owner = self._by_name.get(new_name) or self._reserved.get(new_name)
        if owner is not None and owner != rec.id:
            raise name_conflict(new_name, owner)
        old_name = rec.name
        async with self._write_lock:
            rec.name = new_name
            blob = encode_record(rec)
            try:
                await anyio.to_thread.run_sync(self._rename_sync, rec, blob)
            except BaseException:
                rec.name = old_name
                raise
        self._by_name.pop(old_name, None)
        self._by_name[new_name] = rec.id

    async def delete(self, container_id: str) -> None:
        async with self._write_lock:
            await anyio.to_thread.run_sync(self._delete_sync, container_id)
        rec = self._by_id.pop(container_id, None)
        if rec is not None and self._by_name.get(rec.name) == container_id:
            del self._by_name[rec.name]

    def _insert_sync(self, rec: Record, blob: bytes) -> None:
        with self._db_lock:
            self._db.execute(
                "INSERT INTO containers (id, name, created, node, image_id, status, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec.id, rec.name, rec.created, rec.node, rec.image_id, rec.state.status, blob),
            )

    def _update_sync(self, rec: Record, blob: bytes) -> None:
        with self._db_lock:
            self._db.execute(
                "UPDATE containers SET status = ?, record = ? WHERE id = ?",
                (rec.state.status, blob, rec.id),
            )

    def _rename_sync(self, rec: Record, blob: bytes) -> None:
        with self._db_lock:
            self._db.execute(
                "UPDATE containers SET name = ?, record = ? WHERE id = ?", (rec.name, blob, rec.id)
            )

    def _delete_sync(self, container_id: str) -> None:
        with self._db_lock:
            self._db.execute("DELETE FROM containers WHERE id = ?", (container_id,))

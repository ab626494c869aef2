"""The swarm's state in a JetStream KV bucket: snapshots to read, compare-and-set to write.

Every instance of the orchestrator reads a fresh snapshot for what it answers and writes with
the revision it read, so two instances (a leader and one still answering a request) never
overwrite each other: the second write fails with a conflict and is retried on a new snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio
from berth_contracts import subjects
from berth_contracts.errors import Conflict, Unavailable
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from berth_orchestrator.records import (
    CLUSTER_KEY,
    LEASE_KEY,
    ClusterRecord,
    Keyed,
    NodeRecord,
    Record,
    SeenRecord,
    ServiceRecord,
    TaskRecord,
    decode,
    encode,
    key_of,
)

log = logging.getLogger(__name__)

LOAD_TIMEOUT = 10.0
CONSUMER_LINGER = 1.0


@dataclass
class Snapshot:
    """Every record of the bucket at one moment, with the revision each was read at."""

    cluster: ClusterRecord | None = None
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # node id -> last heartbeat
    revisions: dict[str, int] = field(default_factory=dict)  # key -> revision

    def revision(self, key: str) -> int:
        return self.revisions.get(key, 0)

    def add(self, key: str, record: Record, revision: int) -> None:
        self.revisions[key] = revision
        if isinstance(record, ClusterRecord):
            self.cluster = record
        elif isinstance(record, NodeRecord):
            record.last_seen = self.seen.get(record.id, record.last_seen)
            self.nodes[record.id] = record
        elif isinstance(record, SeenRecord):
            node_id = key.split(".", 1)[1]
            self.seen[node_id] = record.at
            if node_id in self.nodes:
                self.nodes[node_id].last_seen = record.at
        elif isinstance(record, ServiceRecord):
            self.services[record.id] = record
        elif isinstance(record, TaskRecord):
            self.tasks[record.id] = record

    def node_by_berth_name(self, berth_node: str) -> NodeRecord | None:
        return next((n for n in self.nodes.values() if n.berth_node == berth_node), None)


class SwarmStore:
    def __init__(self, nc: NATS) -> None:
        self._js = nc.jetstream(timeout=LOAD_TIMEOUT)
        self._kv: KeyValue | None = None
        self._lock = anyio.Lock()

    async def kv(self) -> KeyValue:
        async with self._lock:
            if self._kv is None:
                try:
                    self._kv = await self._js.key_value(subjects.SWARM_BUCKET)
                except (NotFoundError, BadRequestError):
                    self._kv = await self._js.create_key_value(
                        api.KeyValueConfig(
                            bucket=subjects.SWARM_BUCKET,
                            history=1,
                            storage=api.StorageType.FILE,
                            description="berth swarm mode: cluster, nodes, services, tasks",
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - say what is missing, keep the service up
                    raise Unavailable(f"the swarm's state store (NATS JetStream) is unavailable: {exc}") from exc
            return self._kv

    async def load(self) -> Snapshot:
        """Read every key once. The watcher's "caught up" marker is not used: nats-py can put
        it before entries that reached the client ahead of its consumer-info call; the entry
        with nothing pending after it (delta 0) is the last one instead."""
        kv = await self.kv()
        snap = Snapshot()
        if (await kv.status()).values == 0:
            return snap
        # Each load is a consumer of the bucket's stream, which holds 1000 at most: gone 1 s
        # after it is stopped (nats-py's default keeps it 5 min, and a client polling
        # `docker service ps` reached the limit).
        watcher = await kv.watchall(inactive_threshold=CONSUMER_LINGER)
        try:
            with anyio.fail_after(LOAD_TIMEOUT):
                while True:
                    entry = await watcher.updates(timeout=LOAD_TIMEOUT)
                    if entry is None:
                        continue
                    if entry.value and entry.operation is None and entry.key != LEASE_KEY:
                        snap.add(entry.key, decode(entry.key, entry.value), entry.revision or 0)
                    if entry.delta == 0:
                        break
        except (TimeoutError, NatsTimeoutError):
            raise Unavailable("reading the swarm's state timed out (NATS JetStream)") from None
        finally:
            await watcher.stop()
        return snap

    async def get_raw(self, key: str) -> tuple[bytes, int] | None:
        kv = await self.kv()
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):  # a deleted key is an absent one
            return None
        except Exception as exc:  # noqa: BLE001 - an unreadable store is not an empty one
            raise Unavailable(f"the swarm's state store (NATS JetStream) is unavailable: {exc}") from None
        if not entry.value:
            return None
        return entry.value, entry.revision or 0

    async def in_swarm(self) -> bool:
        """One key read: whether a swarm exists (cheaper than a snapshot, for the loops that
        run outside one too)."""
        return await self.get_raw(CLUSTER_KEY) is not None

    async def write(self, snap: Snapshot, key: str, record: Record) -> int:
        """Create (revision 0 in the snapshot) or update what the snapshot read; Conflict when
        someone wrote it since."""
        kv = await self.kv()
        revision = snap.revision(key)
        try:
            if revision:
                new = await kv.update(key, encode(record), last=revision)
            else:
                new = await kv.create(key, encode(record))
        except KeyWrongLastSequenceError:
            raise Conflict("update out of sequence") from None
        except BadRequestError as exc:  # create of a key that exists
            raise Conflict(f"update out of sequence: {exc.description}") from None
        snap.add(key, record, new)
        return new

    async def put(self, snap: Snapshot, record: Keyed) -> int:
        return await self.write(snap, key_of(record), record)

    async def put_seen(self, snap: Snapshot, node_id: str, at: float) -> int:
        return await self.write(snap, f"seen.{node_id}", SeenRecord(at=at))

    async def put_cluster(self, snap: Snapshot, record: ClusterRecord) -> int:
        return await self.write(snap, CLUSTER_KEY, record)

    async def delete(self, snap: Snapshot, key: str) -> None:
        kv = await self.kv()
        try:
            await kv.delete(key, last=snap.revision(key) or None)
        except KeyWrongLastSequenceError:
            raise Conflict("update out of sequence") from None
        snap.revisions.pop(key, None)

    async def purge_all(self) -> None:
        """`swarm leave` of the last manager: the whole state goes (as dockerd erases its raft)."""
        kv = await self.kv()
        try:
            await self._js.delete_key_value(subjects.SWARM_BUCKET)
        except NotFoundError:
            pass  # gone already (a retried leave)
        finally:
            async with self._lock:
                self._kv = None
        del kv

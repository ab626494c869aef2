"""The swarm's state in a JetStream KV bucket: snapshots to read, compare-and-set to write.

Every instance of the orchestrator reads a fresh snapshot for what it answers and writes with
the revision it read, so two instances (a leader and one still answering a request) never
overwrite each other: the second write fails with a conflict and is retried on a new snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

import anyio
from berth_contracts import subjects
from berth_contracts.errors import Conflict, Unavailable
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from berth_orchestrator.records import (
    CLUSTER_KEY,
    LEASE_KEY,
    ClusterRecord,
    DataRecord,
    Keyed,
    NodeRecord,
    Record,
    SeenRecord,
    ServiceRecord,
    TaskRecord,
    decode,
    encode,
    key_of,
    node_ready,
)

log = logging.getLogger(__name__)

LOAD_TIMEOUT = 10.0
# One JetStream request: short, so that a request lost in a JetStream leader election fails soon
# and is asked again (a node's heartbeat, the leader's cycle) once a new leader answers.
REQUEST_TIMEOUT = 4.0
NOT_YET = "the swarm's state is not readable on this manager yet (NATS JetStream)"
NO_LEADER = (
    "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few "
    "managers are online. Make sure more than half of the managers are online."
)
CONSUMER_LINGER = 1.0
# Reads of the whole state before giving up on a copy behind the stream leader's (a manager
# back from a loss catching up), as Unavailable.
_BEHIND_TRIES = 5
BEHIND = "the swarm's state on this manager is catching up with the other managers (NATS JetStream)"


class _Behind(Exception):
    """A read came from a copy of the state behind the stream leader's."""


@dataclass
class Snapshot:
    """Every record of the bucket at one moment, with the revision each was read at."""

    cluster: ClusterRecord | None = None
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    data: dict[str, DataRecord] = field(default_factory=dict)  # secrets and configs
    seen: dict[str, float] = field(default_factory=dict)  # node id -> last heartbeat
    revisions: dict[str, int] = field(default_factory=dict)  # key -> revision
    # When the read began: a node's silence is counted up to then, as a read slowed by the
    # managers re-electing (seen: 10 s) holds heartbeats written since its start.
    read_at: float = 0.0

    def revision(self, key: str) -> int:
        return self.revisions.get(key, 0)

    @property
    def silence_until(self) -> float:
        """What a node's silence is counted up to: when this read began (now, for a snapshot
        made by hand)."""
        return self.read_at or time.time()

    def ready(self, node: NodeRecord) -> bool:
        """Whether the node was heard recently when this read began."""
        return node_ready(node, self.silence_until)

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
        elif isinstance(record, DataRecord):
            self.data[record.id] = record

    def node_by_berth_name(self, berth_node: str) -> NodeRecord | None:
        return next((n for n in self.nodes.values() if n.berth_node == berth_node), None)


class SwarmStore:
    """On the node's own NATS (a swarm on one host), or on its swarm server (use())."""

    def __init__(self, nc: NATS) -> None:
        self._js: JetStreamContext | None = nc.jetstream(timeout=REQUEST_TIMEOUT)
        self._kv: KeyValue | None = None
        self._create = True
        self._on_server = False
        self._lock = anyio.Lock()
        self._before_close: tuple[JetStreamContext | None, bool, bool] | None = None  # dump(close=True)
        self._why = NOT_YET  # why the state is unreadable while there is no server to read it on

    async def use(self, nc: NATS, on_server: bool = False, create: bool = True) -> None:
        """Read and write through nc from now on. on_server: nc is this manager's swarm server,
        which exists only in a swarm: a state not found there is one not readable yet, never
        "no swarm" (engines would remove their tasks). create=False: never create the bucket
        (a manager in a cluster waits for the cluster's; swarmlink restores it)."""
        async with self._lock:
            self._js = nc.jetstream(timeout=REQUEST_TIMEOUT)
            self._kv = None
            self._before_close = None
            self._on_server = on_server
            self._create = create
            self._why = NOT_YET

    def await_server(self, why: str = NOT_YET) -> None:
        """A manager restarted: its state is on its swarm server, not reached yet. Until use()
        points there, the state is unreadable (never "no swarm": engines would remove tasks).
        why: the error every read answers meanwhile (a locked manager's: autolock)."""
        self._on_server = True
        self._create = False
        self._js = None
        self._kv = None
        self._why = why

    def reopen(self) -> None:
        """After dump(close=True), when the move it was for did not start: as before."""
        if self._js is None and self._before_close is not None:
            (self._js, self._on_server, self._create), self._kv = self._before_close, None
        self._before_close = None

    def _context(self) -> JetStreamContext:
        if self._js is None:
            raise Unavailable(self._why)
        return self._js

    async def kv(self) -> KeyValue:
        async with self._lock:
            js = self._context()
            if self._kv is None:
                try:
                    self._kv = await js.key_value(subjects.SWARM_BUCKET)
                except (NotFoundError, BadRequestError):
                    if not self._create:
                        raise Unavailable(NOT_YET) from None
                    self._kv = await self.create_bucket(1)
                except Exception as exc:  # noqa: BLE001 - say what is missing, keep the service up
                    raise Unavailable(f"the swarm's state store (NATS JetStream) is unavailable: {exc}") from exc
            return self._kv

    async def create_bucket(self, replicas: int) -> KeyValue:
        return await self._context().create_key_value(
            api.KeyValueConfig(
                bucket=subjects.SWARM_BUCKET,
                history=1,
                storage=api.StorageType.FILE,
                replicas=replicas,
                description="berth swarm mode: cluster, nodes, services, tasks",
            )
        )

    async def bucket_state(self) -> str:
        """"missing", "lone" (a server on its own) or "clustered" (in a cluster of servers);
        read afresh, never from the cached bucket."""
        try:
            info = await self._context().stream_info(f"KV_{subjects.SWARM_BUCKET}")
        except NotFoundError:
            return "missing"
        except Exception as exc:  # noqa: BLE001 - a cluster without a leader yet, NATS restarting
            raise Unavailable(f"the swarm's state store (NATS JetStream) is unavailable: {exc}") from None
        return "clustered" if info.cluster is not None and info.cluster.name else "lone"

    async def replicas(self) -> int:
        info = await self._context().stream_info(f"KV_{subjects.SWARM_BUCKET}")
        return info.config.num_replicas or 1

    async def set_replicas(self, replicas: int) -> None:
        """The bucket's copies across the managers' swarm servers (JetStream moves them)."""
        info = await self._context().stream_info(f"KV_{subjects.SWARM_BUCKET}")
        config = info.config
        config.num_replicas = replicas
        await self._context().update_stream(config)

    async def dump(self, close: bool = False) -> dict[str, bytes]:
        """Every key's value (the lease's too), to put into another bucket (swarmlink).
        close: the store is closed to every other reader and writer first (as await_server),
        so that nothing written here after the copy is lost with the bucket it moves from."""
        kv = await self.kv()
        if close:
            self._before_close = (self._js, self._on_server, self._create)
            self.await_server()
        out: dict[str, bytes] = {}
        try:
            keys = await kv.keys()
        except NoKeysError:  # nats-py: an empty bucket has no keys
            return out
        for key in keys:
            try:
                entry = await kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                continue
            except Exception as exc:  # noqa: BLE001 - an unreadable store is not an empty one
                raise self._unreadable(exc) from None
            if entry.value:
                out[key] = entry.value
        return out

    async def put_raw(self, key: str, value: bytes) -> None:
        kv = await self.kv()
        await kv.put(key, value)

    async def load(self) -> Snapshot:
        """Read every key once, from an up-to-date copy of the state (_BEHIND_TRIES reads)."""
        for _ in range(_BEHIND_TRIES - 1):
            with contextlib.suppress(_Behind):
                return await self._load_once()
        try:
            return await self._load_once()
        except _Behind:
            raise Unavailable(BEHIND) from None

    async def _load_once(self) -> Snapshot:
        """The watcher's "caught up" marker is not used: nats-py can put it before entries that
        reached the client ahead of its consumer-info call; the entry with nothing pending
        after it (delta 0) is the last one instead.

        The watcher is a one-copy consumer, which JetStream places on any of the bucket's
        copies: on a manager back from a loss, still catching up, it reads an old state (tasks
        missing). The stream's leader tells its last sequence first: a read that ends before
        it came from a copy behind (_Behind)."""
        kv = await self.kv()
        snap = Snapshot(read_at=time.time())
        newest = 0
        try:
            status = await kv.status()
            values, last_seq = status.values, status.stream_info.state.last_seq or 0
            # Each load is a consumer of the bucket's stream, which holds 1000 at most: gone 1 s
            # after it is stopped (nats-py's default keeps it 5 min, and a client polling
            # `docker service ps` reached the limit).
            watcher = await kv.watchall(inactive_threshold=CONSUMER_LINGER) if values else None
        except (TimeoutError, NatsTimeoutError, NatsError) as exc:
            raise self._unreadable(exc) from None
        if watcher is None:
            if self._on_server:
                raise Unavailable(NOT_YET)
            return snap
        try:
            with anyio.fail_after(LOAD_TIMEOUT):
                while True:
                    entry = await watcher.updates(timeout=LOAD_TIMEOUT)
                    if entry is None:
                        continue
                    newest = max(newest, entry.revision or 0)  # deletion markers count too
                    if entry.value and entry.operation is None and entry.key != LEASE_KEY:
                        snap.add(entry.key, decode(entry.key, entry.value), entry.revision or 0)
                    if entry.delta == 0:
                        break
        except (TimeoutError, NatsTimeoutError) as exc:
            raise self._unreadable(exc) from None
        finally:
            # Shielded and bounded; a connection closed meanwhile (leave) took the consumer with it.
            with anyio.CancelScope(shield=True), anyio.move_on_after(2), contextlib.suppress(NatsError):
                await watcher.stop()
        if newest < last_seq:
            log.info("swarm state: a read from a copy behind the leader's (at %d of %d): read again", newest, last_seq)
            raise _Behind
        return snap

    def _unreadable(self, exc: BaseException) -> Unavailable:
        if self._on_server:  # the managers' cluster without a JetStream leader: dockerd's words
            return Unavailable(NO_LEADER)
        return Unavailable(f"reading the swarm's state failed (NATS JetStream): {exc or type(exc).__name__}")

    async def get_raw(self, key: str) -> tuple[bytes, int] | None:
        kv = await self.kv()
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):  # a deleted key is an absent one
            return None
        except Exception as exc:  # noqa: BLE001 - an unreadable store is not an empty one
            raise self._unreadable(exc) from None
        if not entry.value:
            return None
        return entry.value, entry.revision or 0

    async def in_swarm(self) -> bool:
        """One key read: whether a swarm exists (cheaper than a snapshot, for the loops that
        run outside one too)."""
        found = await self.get_raw(CLUSTER_KEY) is not None
        if not found and self._on_server:
            raise Unavailable(NOT_YET)
        return found

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
        except (TimeoutError, NatsTimeoutError, NatsError) as exc:
            raise self._unreadable(exc) from None
        snap.add(key, record, new)
        return new

    async def put(self, snap: Snapshot, record: Keyed) -> int:
        return await self.write(snap, key_of(record), record)

    async def put_seen(self, snap: Snapshot, node_id: str, at: float) -> int:
        return await self.write(snap, f"seen.{node_id}", SeenRecord(at=at))

    async def hold_seen(self, node_id: str, until: float) -> None:
        """Count a node as heard until `until` (a future time: its heartbeats pause while its
        part changes), over a beat written meanwhile: a few tries, each on the key as read."""
        key = f"seen.{node_id}"
        for _ in range(3):
            try:
                await self.write_over(key, SeenRecord(at=until), await self.get_raw(key))
                return
            except Conflict:
                continue

    async def write_over(self, key: str, record: Record, read: tuple[bytes, int] | None) -> int:
        """Write one key over what get_raw read of it (create it if it read nothing); Conflict
        when someone wrote it since."""
        snap = Snapshot()
        if read:
            snap.revisions[key] = read[1]
        return await self.write(snap, key, record)

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
            await self._context().delete_key_value(subjects.SWARM_BUCKET)
        except NotFoundError:
            pass  # gone already (a retried leave)
        finally:
            async with self._lock:
                self._kv = None
        del kv

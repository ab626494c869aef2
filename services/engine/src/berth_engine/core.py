"""What every container operation shares: the store, the RPC client, events, in-flight state,
and the container's own trace."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import anyio
from berth_contracts import subjects
from berth_contracts.agent import TaskPurge
from berth_contracts.base import Command, Done, Reply
from berth_contracts.errors import BerthError, NotFound
from berth_contracts.lifecycle import SnapshotMounts, SnapshotRemove, SnapshotRemoved
from berth_kit.rpc import RpcClient
from berth_kit.tracing import context_from_traceparent
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Tracer

from berth_engine.containers.records import Record
from berth_engine.containers.restarts import Restarter
from berth_engine.containers.store import RecordStore
from berth_engine.events import EventPublisher
from berth_engine.volumes.service import VolumeService

if TYPE_CHECKING:
    from berth_engine.networks.controller import NetworkService

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Reply)

AGENT_TIMEOUT = 30.0


class EngineCore:
    def __init__(
        self,
        nc: NATS,
        store: RecordStore,
        rpc: RpcClient,
        events: EventPublisher,
        node: str,
        *,
        volumes: VolumeService,
        networks: NetworkService,
        restarter: Restarter,
        tracer: Tracer | None = None,
    ) -> None:
        self.nc = nc
        self.store = store
        self.rpc = rpc
        self.events = events
        self.node = node
        self.tracer = tracer or trace.get_tracer("berth-engine")
        # Containers between TaskCreate and the end of start: their exits are held until then.
        self.starting: dict[str, object] = {}
        # Containers being removed (by `rm` or AutoRemove): a second removal is a Conflict.
        self.removing: set[str] = set()
        # The rootfs mounts SnapshotPrepare answered at create, for the first start to use
        # instead of asking lifecycle again (in memory only: later starts ask).
        self.prepared_mounts: dict[str, SnapshotMounts] = {}
        # Set when a running container's exit has been recorded; used by stop/kill/rm -f.
        self._exited: dict[str, anyio.Event] = {}
        # Serialise what changes a container's task: start, exit processing and removal.
        # (Stop and kill only signal and wait, so they never hold it while waiting.)
        self._locks: dict[str, anyio.Lock] = {}
        # Restart policies: schedules the starts of containers that exited.
        self.restarter = restarter
        # Creates volumes for new containers, drops anonymous ones with them.
        self.volumes = volumes
        # Addresses and published ports of bridge networks.
        self.networks = networks
        # Set at start-up: the ids of a container's running execs (inspect's ExecIDs).
        self.running_execs: Callable[[str], list[str] | None] = lambda container_id: None

    # --- RPC to the node-local services ----------------------------------------------------------

    async def agent(
        self,
        node: str,
        cmd: Command,
        reply: type[R],
        *,
        within: float = AGENT_TIMEOUT,
        attempts: int = 3,
    ) -> R:
        return await self.rpc.request(
            subjects.agent_rpc(node), cmd, reply, timeout=within, attempts=attempts
        )

    async def lifecycle(
        self, node: str, cmd: Command, reply: type[R], *, within: float = 60.0, attempts: int = 3
    ) -> R:
        return await self.rpc.request(
            subjects.lifecycle_rpc(node), cmd, reply, timeout=within, attempts=attempts
        )

    # --- tracing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def container_span(self, rec: Record, name: str) -> Iterator[Span]:
        """A span in the container's own trace (child of its create span), linked to the request
        that caused it, so one trace shows the container's whole life."""
        incoming = trace.get_current_span().get_span_context()
        links = [Link(incoming)] if incoming.is_valid else []
        with self.tracer.start_as_current_span(
            name,
            context=context_from_traceparent(rec.traceparent),
            links=links,
            attributes={"container.id": rec.id, "container.name": rec.name},
        ) as span:
            yield span

    def lock(self, container_id: str) -> anyio.Lock:
        lock = self._locks.get(container_id)
        if lock is None:
            lock = self._locks[container_id] = anyio.Lock()
        return lock

    # --- exit waiters ----------------------------------------------------------------------------

    def arm_exit(self, container_id: str) -> None:
        """A fresh waiter for the run that is starting now."""
        self._exited[container_id] = anyio.Event()

    def notify_exit(self, container_id: str) -> None:
        event = self._exited.pop(container_id, None)
        if event is not None:
            event.set()

    async def wait_exit(self, rec: Record, within: float) -> bool:
        """True once the container's process is gone (or it was removed); False on timeout."""
        if not rec.alive:
            return True
        event = self._exited.setdefault(rec.id, anyio.Event())
        with anyio.move_on_after(within):
            await event.wait()
        return not rec.alive or self.store.get(rec.id) is None

    # --- removal ---------------------------------------------------------------------------------

    async def auto_remove(self, rec: Record, what: str) -> None:
        """`--rm`: destroy, marked as removing meanwhile; a failure is logged, not raised (the
        caller holds the container's lock)."""
        self.removing.add(rec.id)
        try:
            await self.destroy(rec)
        except BerthError as exc:
            log.warning("%s of %s failed: %s", what, rec.short_id, exc.message)
        finally:
            self.removing.discard(rec.id)

    async def destroy(self, rec: Record, *, volumes: bool = False, measure: bool = False) -> int:
        """Remove everything of a stopped container, then its record; publish `destroy`.

        Missing pieces (task already deleted, snapshot never made) are fine; any other failure
        keeps the record so the removal can be retried. The caller holds the container's lock.
        Returns the size of the writable layer removed when `measure` (prune), else 0.
        """
        if self.store.get(rec.id) is not rec:
            return 0  # already removed (AutoRemove and `rm` can both get here)
        if rec.has_task or rec.agent_used:
            # TaskPurge deletes the task first, then its logs: one round trip for both. Never
            # started containers have nothing on the agent's side: no agent round trip.
            await self.ignore_missing(self.agent(rec.node, TaskPurge(container_id=rec.id), Done))
            rec.has_task = False
        size = 0
        with contextlib.suppress(NotFound):
            removed = await self.lifecycle(
                rec.node, SnapshotRemove(key=rec.id, measure=measure), SnapshotRemoved
            )
            size = removed.size
        await self.store.delete(rec.id)
        self._locks.pop(rec.id, None)
        self.prepared_mounts.pop(rec.id, None)
        self.restarter.forget(rec.id)
        self.notify_exit(rec.id)
        if volumes or rec.host_config.auto_remove:
            # `rm -v` and `--rm` take the anonymous volumes along (named ones stay).
            await anyio.to_thread.run_sync(self.volumes.release_anonymous, rec)
        await self.events.container(rec, "destroy")
        return size

    @staticmethod
    async def ignore_missing(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except NotFound:
            pass

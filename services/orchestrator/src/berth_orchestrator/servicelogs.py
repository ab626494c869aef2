"""`docker service logs`: each task's container log, read on the task's node, merged on the
manager the client asked.

- The manager (ServiceLogReader) picks the service's tasks as swarmkit's log broker does: the
  tasks that ran (with --follow also those still starting, and those made later, such as a
  scale's), and asks each task's node for its container's log: NodeLogs on the node's
  subjects.swarm_logs, over the swarm's bus (the managers' swarm servers and the workers'
  links, or this node's own NATS for a swarm on one host).
- The node (NodeLogSource) reads the log from its own engine (ContainerLogs) and streams it
  back under its own subjects.swarm_log_stream, the subjects its leaf credentials may publish.
- The manager passes every line on to the gateway with the line's node, service and task IDs
  (dockerd's `com.docker.swarm.*` details), which the docker CLI turns into `name@node |`.
Both hops are relays (logrelay): paced end to end, and torn down when the client leaves.

A task whose node is down, or does not answer, leaves its log out, and the stream ends with
swarmkit's words: "warning: incomplete log stream. some logs could not be retrieved for the
following reasons: node ... is not available".
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from berth_contracts import subjects
from berth_contracts import swarm as sw
from berth_contracts.engine import ContainerLogs, ContainerRef, ContainerResolve, LogsStarted
from berth_contracts.errors import BerthError, NotFound
from berth_kit.rpc import NoAnswer, RpcClient, RpcServer
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from berth_orchestrator.logrelay import Downstream, ReaderGone, SenderGone, relay
from berth_orchestrator.lookup import resolve, service_name
from berth_orchestrator.reconcile import TERMINAL
from berth_orchestrator.records import TaskRecord
from berth_orchestrator.store import Snapshot

log = logging.getLogger(__name__)

ASK_WITHIN = 10.0  # a node's answer to NodeLogs
NEW_TASKS_EVERY = 1.0  # --follow: the service's tasks made since (a scale, an update)
CONTEXT = "com.docker.swarm"


def incomplete(reasons: list[str]) -> str:
    return (
        "warning: incomplete log stream. some logs could not be retrieved for the following "
        f"reasons: {', '.join(reasons)}"
    )


def task_attrs(task: TaskRecord) -> dict[str, str]:
    """The details dockerd adds to each line of a service's log, in its order."""
    return {
        f"{CONTEXT}.node.id": task.node_id,
        f"{CONTEXT}.service.id": task.service_id,
        f"{CONTEXT}.task.id": task.id,
    }


def readable(task: TaskRecord, follow: bool) -> bool:
    """A task whose container log can be asked for. Without --follow only tasks that ran, as
    swarmkit's broker; a task whose container is not made yet is asked later (--follow)."""
    if not task.node_id or not task.container_id:
        return False
    return follow or task.state in ("running", *TERMINAL)


def select(snap: Snapshot, cmd: sw.ServiceLogs) -> tuple[bool, list[TaskRecord]]:
    """Whether the service (or task) has a TTY, and its tasks; NotFound in dockerd's words."""
    if cmd.task:
        task = resolve(snap.tasks, cmd.ref, "task", lambda t: "")
        return bool(task.template.get("ContainerSpec", {}).get("TTY")), [task]
    svc = resolve(snap.services, cmd.ref, "service", service_name)
    spec = svc.spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    tasks = [t for t in snap.tasks.values() if t.service_id == svc.id]
    return bool(spec.get("TTY")), sorted(tasks, key=lambda t: (t.slot, t.created_at))


def _tasks_of(snap: Snapshot, cmd: sw.ServiceLogs) -> list[TaskRecord]:
    """The tasks now (--follow): none once the service is gone."""
    try:
        return select(snap, cmd)[1]
    except NotFound:
        return []


class ServiceLogReader:
    """The manager's side: ServiceLogs from the gateway."""

    def __init__(
        self,
        managed: Callable[[], Awaitable[Snapshot]],
        local: NATS,
        swarm_bus: Callable[[], NATS],
        tg: TaskGroup,
    ) -> None:
        self._managed = managed  # the state, or dockerd's "not a manager"
        self._local = local
        self._swarm_bus = swarm_bus  # the swarm's bus as this manager reaches it
        self._tg = tg

    async def logs(self, cmd: sw.ServiceLogs) -> LogsStarted:
        snap = await self._managed()
        tty, _ = select(snap, cmd)  # NotFound before the stream starts
        down = Downstream(self._local, cmd.stream_subject, self._local.new_inbox())
        self._tg.start_soon(self._stream, cmd, snap, down)
        return LogsStarted(tty=tty)

    async def _stream(self, cmd: sw.ServiceLogs, snap: Snapshot, down: Downstream) -> None:
        reasons: dict[str, str] = {}  # by node: one reason each
        asked: set[str] = set()
        with anyio.CancelScope() as everything:
            async with anyio.create_task_group() as tg:
                tg.start_soon(down.watch, everything)
                async with anyio.create_task_group() as tasks:
                    while True:
                        for task in _tasks_of(snap, cmd):
                            if task.id not in asked and readable(task, cmd.follow):
                                asked.add(task.id)
                                tasks.start_soon(self._task_log, cmd, snap, task, down, reasons, everything)
                        if not cmd.follow:
                            break
                        await anyio.sleep(NEW_TASKS_EVERY)
                        try:
                            snap = await self._managed()
                        except Exception as exc:  # noqa: BLE001 - the state unreadable a moment: next time
                            log.debug("service logs: the swarm's state: %s", exc)
                tg.cancel_scope.cancel()
            await down.end(incomplete(list(reasons.values())) if reasons else "")

    async def _task_log(
        self, cmd: sw.ServiceLogs, snap: Snapshot, task: TaskRecord, down: Downstream, reasons: dict[str, str],
        everything: anyio.CancelScope,
    ) -> None:  # fmt: skip
        node = snap.nodes.get(task.node_id)
        unavailable = f"node {task.node_id} is not available"
        if node is None or not snap.ready(node):
            reasons.setdefault(task.node_id, unavailable)
            return
        nc = self._swarm_bus()
        stream = f"{subjects.swarm_log_stream(node.id)}.{uuid.uuid4().hex}"
        try:
            sub = await nc.subscribe(stream)
        except Exception:  # noqa: BLE001 - the swarm's bus is down or moving
            reasons.setdefault(task.node_id, unavailable)
            return
        try:
            request = sw.NodeLogs(
                task_id=task.id, container_id=task.container_id, stream_subject=stream,
                ack_prefix=subjects.swarm_log_acks(node.id),
                stdout=cmd.stdout, stderr=cmd.stderr, follow=cmd.follow, tail=cmd.tail, since=cmd.since,
            )  # fmt: skip
            await RpcClient(nc, "berth-orchestrator").request(
                subjects.swarm_logs(node.id), request, LogsStarted, timeout=ASK_WITHIN, attempts=1,
                reply_prefix=subjects.swarm_log_stream(node.id),
            )  # fmt: skip
            error = await relay(sub, down, task_attrs(task))
            if error:
                reasons.setdefault(task.node_id, error)
        except NotFound:
            pass  # the container is gone (removed with its task's history): nothing to read
        except (NoAnswer, SenderGone):
            reasons.setdefault(task.node_id, unavailable)
        except ReaderGone:
            everything.cancel()
        except BerthError as exc:
            reasons.setdefault(task.node_id, exc.message)
        except Exception:  # noqa: BLE001 - one task's log, not the service
            log.exception("reading task %s's log failed", task.id)
            reasons.setdefault(task.node_id, unavailable)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


class NodeLogSource:
    """The node's side: NodeLogs from a manager, answered from this node's engine."""

    def __init__(self, local: NATS, rpc: RpcClient, tg: TaskGroup) -> None:
        self._local = local
        self._rpc = rpc
        self._tg = tg

    async def logs(self, cmd: sw.NodeLogs, swarm_bus: NATS) -> LogsStarted:
        # A task's container only, by its full ID, as dockerd's nodes publish only their tasks'
        # logs: the managers command this node's tasks, not its other containers.
        found = await self._rpc.request(subjects.ENGINE_RPC, ContainerResolve(ref=cmd.container_id), ContainerRef,
                                        timeout=ASK_WITHIN, attempts=1)  # fmt: skip
        if found.id != cmd.container_id or not found.name.endswith(f".{cmd.task_id}"):
            raise NotFound(f"No such container: {cmd.container_id}")
        inbox = self._local.new_inbox()
        sub = await self._local.subscribe(inbox)
        try:
            started = await self._rpc.request(
                subjects.ENGINE_RPC,
                ContainerLogs(
                    ref=cmd.container_id, stream_subject=inbox, stdout=cmd.stdout, stderr=cmd.stderr,
                    follow=cmd.follow, tail=cmd.tail, since=cmd.since,
                ),
                LogsStarted, timeout=ASK_WITHIN, attempts=1,
            )  # fmt: skip
        except BaseException:
            await sub.unsubscribe()
            raise
        self._tg.start_soon(self._pass_on, sub, Downstream(swarm_bus, cmd.stream_subject, cmd.ack_prefix))
        return started

    async def _pass_on(self, sub: Subscription, down: Downstream) -> None:
        error: str | None = None
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(down.watch, scope)
                try:
                    error = await relay(sub, down)
                except (ReaderGone, SenderGone):
                    pass  # the manager's reader left, or this node's engine stopped sending
                except Exception:  # noqa: BLE001 - one log stream, not the service
                    log.exception("a task's log stream failed")
                tg.cancel_scope.cancel()
        if error is not None:
            await down.end(error)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class NodeLogEndpoint:
    """Serves NodeLogs where this node's managers send them: a manager's swarm server, a
    worker's own NATS (its link carries them), or its own NATS for a swarm on one host."""

    def __init__(self, source: NodeLogSource, tg: TaskGroup, name: str, node: str) -> None:
        self._source = source
        self._tg = tg
        self._name = name
        self._node = node
        self._at: tuple[NATS, str] | None = None  # the connection itself: a new one is new
        self._server: RpcServer | None = None

    async def serve_at(self, nc: NATS | None, subject: str) -> None:
        at = (nc, subject) if nc is not None else None
        if at is not None and self._at is not None and at[0] is self._at[0] and at[1] == self._at[1]:
            return
        if at is None and self._at is None:
            return
        server, self._server, self._at = self._server, None, None
        if server is not None:
            with anyio.move_on_after(5), contextlib.suppress(Exception):  # its connection may be closed
                await server.stop()
        if nc is None:
            return
        bus = nc

        async def node_logs(cmd: sw.NodeLogs) -> LogsStarted:
            return await self._source.logs(cmd, bus)

        server = RpcServer(nc, subject, sw.NodeLogSource, tracer_name=self._name, node=self._node)
        server.handle(sw.NodeLogs, node_logs)
        await server.start(self._tg)
        self._server, self._at = server, at

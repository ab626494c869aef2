"""The node side of swarm mode (swarmkit's agent and dockerd's executor): every HEARTBEAT seconds
the engine tells the orchestrator what its task containers are doing and gets back the tasks
this node holds, then makes its containers match:

- a task to run and no container: create it (named and labelled as dockerd does) and start it;
- a task to shut down whose container runs: stop it (its grace period), keep the container;
- a task container whose task the orchestrator no longer lists (service removed, history
  pruned, swarm left), in answers at least UNLISTED_FOR apart: remove it.

Actions run in the background, one at a time per task, so a slow stop never delays the
heartbeat that keeps this node `ready`. While the orchestrator does not answer, nothing changes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import urlsplit

import anyio
import msgspec
from anyio.abc import TaskGroup
from berth_common.engineversion import ENGINE_VERSION
from berth_common.reference import InvalidReference, parse_normalized_named
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.distribution import REGISTRY_AUTH_HEADER
from berth_contracts.docker import CreateRequest, Event, HostConfig, PortBinding
from berth_contracts.engine import (
    ContainerCreate,
    ContainerRemove,
    ContainerStart,
    ContainerStop,
    ImagePull,
    UploadTarget,
)
from berth_contracts.errors import (
    BerthError,
    InternalError,
    InvalidParameter,
    NotFound,
    NotModified,
)
from berth_contracts.swarmnode import NodeAssignments, NodeHeartbeat, TaskAssignment, TaskReport
from berth_kit.node import engine_label_map, node_generic_resources
from berth_kit.rpc import RpcClient
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from berth_engine.containers.creating import CreateService
from berth_engine.containers.records import Record
from berth_engine.containers.starting import StartService
from berth_engine.containers.stopping import StopService
from berth_engine.core import EngineCore
from berth_engine.info import host_facts
from berth_engine.swarm import taskfiles

log = logging.getLogger(__name__)

TASK_LABEL = "com.docker.swarm.task.id"
HEARTBEAT = 2.0  # in a swarm; the orchestrator calls a node down after 6 s without one
RETRY = 1.0  # after a beat that failed in a swarm: the node's silence counts meanwhile
# A task container goes only when answers this far apart agree that its task is no longer this
# node's: one answer can come from a manager whose copy of the state is behind (a manager back
# from a loss answers from its JetStream replica while it catches up), and removal is final.
UNLISTED_FOR = 3.0
IDLE_HEARTBEAT = 5.0  # outside one: only to learn that this node joined
_PARALLEL = 4  # task actions at once


def task_report(task_id: str, rec: Record, shut_down: bool = False) -> TaskReport:
    """dockerd's task states for a container's state (the executor's controller); shut_down:
    the orchestrator asked this task to stop, so its end is `shutdown`, not a failure."""
    state = rec.state
    test = (rec.config.healthcheck.test if rec.config.healthcheck is not None else None) or []
    checked = bool(test) and test[0] != "NONE"
    # Before its first probe a checked container has no health yet: it is starting too.
    health = state.health.status if state.health is not None else ("starting" if checked else "")
    if rec.running and health == "unhealthy":  # swarmkit: the task fails, and is replaced
        return TaskReport(task_id=task_id, state="failed", message="started", err="task: container is unhealthy",
                          container_id=rec.id, pid=state.pid)  # fmt: skip
    if rec.running and health == "starting":  # running only once its healthcheck passes
        return TaskReport(task_id=task_id, state="starting", message="starting", container_id=rec.id, pid=state.pid)
    if rec.running:
        return TaskReport(task_id=task_id, state="running", message="started", container_id=rec.id, pid=state.pid)
    if state.status == "created":
        return TaskReport(task_id=task_id, state="starting", message="starting", container_id=rec.id)
    if shut_down:
        return TaskReport(task_id=task_id, state="shutdown", message="shutdown", container_id=rec.id,
                          exit_code=state.exit_code)  # fmt: skip
    if state.exit_code == 0 and not state.error:
        return TaskReport(task_id=task_id, state="complete", message="finished", container_id=rec.id)
    err = state.error or f"task: non-zero exit ({state.exit_code})"
    return TaskReport(task_id=task_id, state="failed", message="started", err=err, container_id=rec.id,
                      exit_code=state.exit_code)  # fmt: skip


def create_request(task: TaskAssignment) -> CreateRequest:
    ports: dict[str, list[PortBinding] | None] = {
        f"{p.target}/{p.protocol}": [PortBinding(host_port=str(p.published or ""))] for p in task.ports
    }
    return CreateRequest(
        image=task.image,
        entrypoint=task.command,
        cmd=task.args,
        env=task.env,
        labels=task.labels,
        working_dir=task.workdir,
        user=task.user,
        hostname=task.hostname,
        tty=task.tty,
        open_stdin=task.open_stdin,
        stop_signal=task.stop_signal,
        stop_timeout=task.stop_grace_seconds,
        healthcheck=task.healthcheck,
        exposed_ports={port: {} for port in ports} or None,
        host_config=msgspec.structs.replace(
            task.host_config or HostConfig(),
            port_bindings=ports or None,
            init=task.init,
            readonly_rootfs=task.read_only,
            nano_cpus=task.nano_cpus,
            memory=task.memory_bytes,
            mounts=task.mounts or None,
        ),
    )


class SwarmWorker:
    def __init__(
        self, core: EngineCore, rpc: RpcClient, create: CreateService, start: StartService, stop: StopService
    ) -> None:
        self.core = core
        self.rpc = rpc
        self.create = create
        self.start = start
        self.stop = stop
        self._busy: set[str] = set()  # task ids with an action under way
        self._rejected: dict[str, TaskReport] = {}  # tasks this node could not make a container for
        self._desired: dict[str, str] = {}  # task id -> desired state, as last heard
        self._unlisted: dict[str, float] = {}  # task id -> when an answer first left it out
        self._limit = anyio.CapacityLimiter(_PARALLEL)
        self._wake = anyio.Event()  # beat now: the orchestrator announced a change, or a task moved
        _, _, ncpu, mem_total, _, _ = host_facts()
        self._resources = (ncpu * 1_000_000_000, mem_total)

    def task_containers(self) -> dict[str, Record]:
        out = {}
        for rec in self.core.store.all():
            task_id = (rec.config.labels or {}).get(TASK_LABEL)
            if task_id:
                out[task_id] = rec
        return out

    async def subscribe(self, nc: NATS) -> None:
        async def changed(_: Msg) -> None:
            self._wake.set()

        async def container_event(msg: Msg) -> None:
            """A task container died or its health changed: report it now, so a replacement is
            placed, or an update goes on, at once."""
            with contextlib.suppress(Exception):  # what is not an event wakes nothing
                event = decode(msg.data, Event)
                woken = event.Action == "die" or event.Action.startswith("health_status")
                rec = self.core.store.get(event.Actor.ID) if woken else None
                if rec is not None and TASK_LABEL in (rec.config.labels or {}):
                    self._wake.set()

        await nc.subscribe(subjects.SWARM_CHANGED, cb=changed)
        await nc.subscribe(subjects.docker_events("container", "*"), cb=container_event)

    async def run(self, tg: TaskGroup) -> None:
        in_swarm = False
        while True:
            pause = RETRY if in_swarm else IDLE_HEARTBEAT
            try:
                in_swarm = await self.beat(tg)
                pause = HEARTBEAT if in_swarm else IDLE_HEARTBEAT
            except BerthError as exc:  # no orchestrator (yet), the state unreadable, the
                # answer lost with a manager: nothing changes, and in a swarm the next beat
                # comes sooner (the managers count a node's silence only while they could
                # have heard it, but a lost beat's timeout counts)
                log.debug("swarm heartbeat: %s", exc.message)
            except Exception:  # noqa: BLE001 - the next beat tries again
                log.exception("swarm heartbeat failed")
            with anyio.move_on_after(pause):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def beat(self, tg: TaskGroup) -> bool:
        containers = self.task_containers()
        reports = [
            task_report(task_id, rec, self._desired.get(task_id, "running") != "running")
            for task_id, rec in containers.items()
        ]
        reports += [r for task_id, r in self._rejected.items() if task_id not in containers]
        held = taskfiles.prune_files(set(containers) | self._busy)
        reply = await self.rpc.request(
            subjects.ORCHESTRATOR_RPC,
            NodeHeartbeat(
                node=self.core.node, hostname=socket.gethostname(), engine_version=ENGINE_VERSION,
                nano_cpus=self._resources[0], memory_bytes=self._resources[1], tasks=reports,
                engine_labels=engine_label_map(), files_held=sorted(held), generic_resources=node_generic_resources(),
            ),
            NodeAssignments,
            timeout=10.0,
            attempts=1,
        )  # fmt: skip
        self.reconcile(tg, reply, containers)
        return reply.in_swarm

    def reconcile(self, tg: TaskGroup, reply: NodeAssignments, containers: dict[str, Record]) -> None:
        wanted = {task.task_id: task for task in reply.tasks}
        self._desired = {task.task_id: task.desired_state for task in reply.tasks}
        self._rejected = {k: v for k, v in self._rejected.items() if k in wanted}
        now = anyio.current_time()
        self._unlisted = {k: self._unlisted.get(k, now) for k in containers if k not in wanted}
        for task_id, since in self._unlisted.items():
            if now - since >= UNLISTED_FOR:
                old = containers[task_id]
                why = f"no longer assigned to this node: its container {old.id[:12]} goes"
                self._act(tg, task_id, partial(self._remove, task_id, old.id), why)
        for task in wanted.values():
            rec = containers.get(task.task_id)
            if task.desired_state == "running":
                if rec is None and task.task_id not in self._rejected:
                    self._act(tg, task.task_id, partial(self._run, task))
                elif rec is not None and rec.state.status == "created":
                    self._act(tg, task.task_id, partial(self._start, task, rec.id))
            elif rec is not None and rec.alive:
                why = f"{task.desired_state}: stopping its container {rec.id[:12]}"
                self._act(tg, task.task_id, partial(self._stop, rec.id, task.stop_grace_seconds), why)

    def _act(self, tg: TaskGroup, task_id: str, action: Callable[[], Awaitable[None]], why: str = "") -> None:
        """Run the task's action unless one is under way; `why` is logged when it starts."""
        if task_id in self._busy:
            return
        if why:
            log.info("swarm task %s is %s", task_id, why)
        self._busy.add(task_id)

        async def run() -> None:
            try:
                async with self._limit:
                    await action()
            except Exception:  # noqa: BLE001 - reported through the task's state
                log.exception("swarm task %s", task_id)
            finally:
                self._busy.discard(task_id)
                self._wake.set()  # report what the action did

        tg.start_soon(run)

    async def _run(self, task: TaskAssignment) -> None:
        if task.error:  # the orchestrator could not make its spec: the task fails, as on dockerd
            self._rejected[task.task_id] = TaskReport(task_id=task.task_id, state="failed", message="starting",
                                                      err=task.error)  # fmt: skip
            return
        if not taskfiles.data_given(task):  # held when the beat went, gone since: the next beat brings it
            log.info("swarm task %s waits for its secrets' and configs' data", task.task_id)
            return
        try:
            mounts = await anyio.to_thread.run_sync(taskfiles.write_files, task)
            create = ContainerCreate(body=create_request(task), name=task.container_name)
            try:
                created = await self.create.create(create, mounts)
            except NotFound as exc:
                if not exc.message.startswith("No such image"):
                    raise
                await self._pull(task.image, task.registry_auth)  # as dockerd's executor: pull, then create
                created = await self.create.create(create, mounts)
        except (BerthError, OSError) as exc:
            taskfiles.remove_files(task.task_id)
            err = exc.message if isinstance(exc, BerthError) else f"writing the task's secrets and configs: {exc}"
            self._rejected[task.task_id] = TaskReport(task_id=task.task_id, state="rejected", message="preparing", err=err)
            return
        await self._start(task, created.id)

    async def _pull(self, image: str, registry_auth: str) -> None:
        """`docker pull` of the task's image through lifecycle (and registry-proxy); the
        progress stream is read to its end, an errorDetail line is the error. With the
        service's credentials (`--with-registry-auth`) as a `docker pull` with credentials:
        they go with the POST, and lifecycle talks to the registry directly."""
        try:
            named = parse_normalized_named(image)
        except InvalidReference as exc:
            raise InvalidParameter(str(exc)) from None
        # The CLI pins a digest (name:tag@sha256:...): the digest names what to pull.
        pull = ImagePull(ref=named.name, tag=named.digest or named.tag, credentials=bool(registry_auth))
        target = await self.core.lifecycle(self.core.node, pull, UploadTarget, within=90.0)
        await anyio.to_thread.run_sync(read_progress, target.url, registry_auth)

    async def _start(self, task: TaskAssignment, container_id: str) -> None:
        try:
            await self.start.start(ContainerStart(ref=container_id))
        except NotModified:
            pass
        except BerthError as exc:  # the container stays, exited: its report says failed
            log.info("swarm task %s did not start: %s", task.task_id, exc.message)

    async def _stop(self, container_id: str, grace: int | None) -> None:
        try:
            await self.stop.stop(ContainerStop(ref=container_id, timeout=grace))
        except (NotFound, NotModified):
            pass

    async def _remove(self, task_id: str, container_id: str) -> None:
        try:
            await self.stop.remove(ContainerRemove(ref=container_id, force=True))
        except NotFound:
            pass
        taskfiles.remove_files(task_id)


def read_progress(url: str, registry_auth: str = "", timeout: float = 600.0) -> None:
    """POST to a lifecycle pull URL (with the credentials, if any) and read Docker's JSON
    progress lines to the end."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise InternalError(f"cannot fetch a pull's progress from {url}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        headers = {REGISTRY_AUTH_HEADER: registry_auth} if registry_auth else {}
        conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=b"", headers=headers)
        resp = conn.getresponse()
        if resp.status >= 400:
            body = resp.read(64 * 1024)
            try:
                message = str(json.loads(body).get("message") or "")
            except (ValueError, AttributeError):
                message = body.decode(errors="replace").strip()
            raise NotFound(message or f"pull failed: HTTP {resp.status}")
        for raw in resp:
            line = raw.strip()
            if not line:
                continue
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and doc.get("error"):
                    raise NotFound(str(doc["error"]))
    finally:
        conn.close()

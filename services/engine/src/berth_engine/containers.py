"""The container operations of dockerd: create, start, stop, kill, remove, inspect, list, logs."""

from __future__ import annotations

import logging

from berth_contracts.agent import (
    TaskCreate,
    TaskCreated,
    TaskDelete,
    TaskKill,
    TaskLogs,
    TaskResize,
    TaskStart,
    TaskStarted,
)
from berth_contracts.base import Done
from berth_contracts.codec import encode
from berth_contracts.engine import (
    ContainerCreate,
    ContainerCreated,
    ContainerDetail,
    ContainerGet,
    ContainerKill,
    ContainerList,
    ContainerListing,
    ContainerLogs,
    ContainerRef,
    ContainerRemove,
    ContainerResize,
    ContainerResolve,
    ContainerStart,
    ContainerStop,
    LogsStarted,
)
from berth_contracts.errors import (
    BerthError,
    Conflict,
    InternalError,
    InvalidParameter,
    NotFound,
    NotModified,
)
from berth_contracts.lifecycle import (
    ImageFound,
    ImageResolve,
    SnapshotGetMounts,
    SnapshotMounts,
    SnapshotPrepare,
)
from berth_contracts.streams import LogBatch
from berth_kit.tracing import traceparent_of
from opentelemetry.trace import Span

from berth_engine import listing, views
from berth_engine.core import EngineCore
from berth_engine.exits import ExitHandler
from berth_engine.merge import check_supported, final_command, merge_config, normalise_host_config
from berth_engine.naming import generate_unique_name, new_container_id, validate_name
from berth_engine.records import Record, State
from berth_engine.restarts import validate_policy
from berth_engine.signals import SIGKILL, SIGTERM, parse_signal
from berth_engine.store import RecordStore
from berth_engine.taskspec import exit_code_for_start_error, start_error, task_spec
from berth_engine.timefmt import rfc3339nano

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 30.0  # after SIGKILL the kernel is quick; this only bounds a lost exit event
FOREVER = 365 * 24 * 3600.0  # Docker's negative stop timeout: wait as long as it takes


class ContainerService:
    def __init__(self, core: EngineCore, exits: ExitHandler) -> None:
        self.core = core
        self.exits = exits

    @property
    def store(self) -> RecordStore:
        return self.core.store

    # --- create ----------------------------------------------------------------------------------

    async def create(self, cmd: ContainerCreate) -> ContainerCreated:
        req = cmd.body
        with self.core.tracer.start_as_current_span("container create") as span:
            name = validate_name(cmd.name) if cmd.name else ""
            if not req.image:
                raise InvalidParameter("config cannot be empty in order to create a container")
            validate_policy(req.host_config.restart_policy, req.host_config.auto_remove)
            check_supported(req)
            node = self.core.node
            found = await self.core.lifecycle(node, ImageResolve(ref=req.image), ImageFound)
            image = found.image
            cid = new_container_id()
            span.set_attribute("container.id", cid)
            config = merge_config(req, image.config, cid, req.image)
            argv = final_command(config)
            if not name:
                name = generate_unique_name(self.store.name_taken)
            self.store.reserve_name(name, cid)
            try:
                rec = Record(
                    id=cid,
                    name=name,
                    created=rfc3339nano(),
                    request=req,
                    config=config,
                    host_config=normalise_host_config(req.host_config),
                    path=argv[0],
                    args=argv[1:],
                    image_id=image.id,
                    image_name=req.image,
                    node=node,
                    traceparent=traceparent_of(span),
                )
                await self.store.insert(rec)
            finally:
                self.store.release_name(name)
            try:
                # Like containerd, the writable layer exists from create on (docker cp, diff).
                await self.core.lifecycle(
                    node, SnapshotPrepare(key=cid, image_id=image.id), SnapshotMounts
                )
            except BerthError:
                await self.store.delete(cid)
                raise
            await self.core.events.container(rec, "create")
            return ContainerCreated(id=cid, warnings=[])

    # --- start -----------------------------------------------------------------------------------

    async def start(self, cmd: ContainerStart) -> Done:
        rec = self.store.lookup(cmd.ref)
        with self.core.container_span(rec, "container start") as span:
            if rec.running or rec.id in self.core.starting:
                raise NotModified("container already started")
            if rec.id in self.core.removing:
                raise Conflict("container is marked for removal and cannot be started")
            # A start through the API re-arms the restart policy (moby resets its manager).
            rec.manually_stopped = False
            if self.core.restarter is not None:
                self.core.restarter.forget(rec.id)
            await self._run_start(rec, span, restarting=False)
            return Done()

    async def restart_run(self, rec: Record) -> None:
        """The restart policy's start, once the back-off has passed."""
        with self.core.container_span(rec, "container restart") as span:
            await self._run_start(rec, span, restarting=True)

    async def _run_start(self, rec: Record, span: Span, *, restarting: bool) -> None:
        self.core.starting[rec.id] = None
        pending: object = None
        try:
            async with self.core.lock(rec.id):
                if restarting and (
                    rec.state.status != "restarting" or self.store.get(rec.id) is not rec
                ):
                    return  # stopped or removed during the back-off
                try:
                    await self._start_task(rec, span)
                except BerthError as exc:
                    self.core.starting.pop(rec.id, None)
                    err = await self._start_failed(rec, exc)
                    if restarting:
                        return
                    raise err from None
                # Published under the lock so no `die` of this run can precede it.
                await self.core.events.container(rec, "start")
                pending = self.core.starting.pop(rec.id, None)
        finally:
            self.core.starting.pop(rec.id, None)
        if pending is not None:
            # The process exited before TaskStart answered: apply that exit now.
            await self.exits.on_task_exit(pending)  # type: ignore[arg-type]

    async def _start_task(self, rec: Record, span: Span) -> None:
        mounts = await self.core.lifecycle(rec.node, SnapshotGetMounts(key=rec.id), SnapshotMounts)
        if rec.has_task or rec.agent_used:
            # Clear what an earlier run may have left (a failed TaskDelete, or an engine that
            # died between TaskCreate and saving the record); the agent's delete is idempotent.
            try:
                await self.core.agent(rec.node, TaskDelete(container_id=rec.id), Done)
            except NotFound:
                pass
            rec.has_task = False
        else:
            rec.agent_used = True
            await self.store.save(rec)  # before TaskCreate: a crash must not forget it was sent
        created = await self.core.agent(
            rec.node,
            TaskCreate(container_id=rec.id, spec=task_spec(rec), rootfs=mounts.mounts),
            TaskCreated,
        )
        rec.has_task = True
        rec.log_path = created.log_path or rec.log_path
        await self._initial_console_size(rec)
        try:
            started = await self.core.agent(rec.node, TaskStart(container_id=rec.id), TaskStarted)
        except BerthError:
            try:
                await self.core.agent(rec.node, TaskDelete(container_id=rec.id), Done)
                rec.has_task = False
            except BerthError as exc:
                log.warning("TaskDelete %s after failed start: %s", rec.short_id, exc.message)
            raise
        self.core.arm_exit(rec.id)
        rec.state = State(
            status="running",
            pid=started.pid,
            started_at=started.started_at or rfc3339nano(),
            finished_at=rec.state.finished_at,
        )
        span.set_attribute("container.pid", started.pid)
        await self.store.save(rec)

    async def _initial_console_size(self, rec: Record) -> None:
        """moby applies HostConfig.ConsoleSize ([height, width]) between create and start."""
        size = rec.host_config.console_size or []
        if not rec.config.tty or len(size) != 2 or not (size[0] or size[1]):
            return
        try:
            await self.core.agent(
                rec.node, TaskResize(container_id=rec.id, height=size[0], width=size[1]), Done
            )
        except BerthError as exc:  # a wrong initial size must not fail the start
            log.warning("initial console size for %s: %s", rec.short_id, exc.message)

    async def resize(self, cmd: ContainerResize) -> Done:
        rec = self.store.lookup(cmd.ref)
        if not rec.alive:
            raise Conflict(f"container {rec.id} is not running")
        if rec.config.tty:  # no terminal, no window size: moby answers 200 as well
            await self.core.agent(
                rec.node,
                TaskResize(container_id=rec.id, height=cmd.height, width=cmd.width),
                Done,
                within=10.0,
            )
        return Done()

    async def _start_failed(self, rec: Record, exc: BerthError) -> BerthError:
        err = start_error(exc)
        rec.state.error = err.message
        if rec.state.status == "restarting":
            rec.state.status = "exited"  # the restart failed: no more attempts
            self.core.notify_exit(rec.id)
        if rec.state.exit_code == 0:
            rec.state.exit_code = exit_code_for_start_error(err.message)
        await self.store.save(rec)
        if rec.host_config.auto_remove and rec.id not in self.core.removing:
            # `docker run --rm` waits for removal even when start fails: remove now.
            self.core.removing.add(rec.id)
            try:
                await self.core.destroy(rec)
            except BerthError as cleanup:
                log.warning("removing %s after failed start: %s", rec.short_id, cleanup.message)
            finally:
                self.core.removing.discard(rec.id)
        return err

    # --- stop / kill -----------------------------------------------------------------------------

    async def stop(self, cmd: ContainerStop) -> Done:
        rec = self.store.lookup(cmd.ref)
        with self.core.container_span(rec, "container stop"):
            if not rec.running:
                raise NotModified("Container already stopped")
            rec.manually_stopped = True  # before the signal: the exit must not be restarted
            if await self._settle_restarting(rec):
                await self.core.events.container(rec, "stop")
                return Done()
            if cmd.signal:
                sig = parse_signal(cmd.signal)
            elif rec.config.stop_signal:
                sig = parse_signal(rec.config.stop_signal)
            else:
                sig = SIGTERM
            timeout = cmd.timeout if cmd.timeout is not None else rec.config.stop_timeout
            if timeout is None:
                timeout = DEFAULT_STOP_TIMEOUT
            wait = FOREVER if timeout < 0 else float(timeout)
            if sig != SIGKILL and await self._signal(rec, sig):
                if await self.core.wait_exit(rec, wait):
                    await self.core.events.container(rec, "stop")
                    return Done()
                log.info("%s did not stop within %ss; killing it", rec.short_id, timeout)
            await self._kill_and_wait(rec)
            await self.core.events.container(rec, "stop")
            return Done()

    async def kill(self, cmd: ContainerKill) -> Done:
        rec = self.store.lookup(cmd.ref)
        sig = parse_signal(cmd.signal or "KILL")
        with self.core.container_span(rec, "container kill"):
            if not rec.running:
                raise Conflict(
                    f"Cannot kill container: {cmd.ref}: container {rec.id} is not running"
                )
            if rec.state.status == "restarting":
                raise Conflict(
                    f"Cannot kill container: {cmd.ref}: Container {rec.id} is restarting, "
                    "wait until the container is running"
                )
            # moby's ExitOnNext: a kill with the stop signal (or KILL) ends the restart policy.
            stop_sig = parse_signal(rec.config.stop_signal) if rec.config.stop_signal else 0
            if sig == SIGKILL or not stop_sig or sig == stop_sig:
                rec.manually_stopped = True
            if not await self._signal(rec, sig):
                raise Conflict(
                    f"Cannot kill container: {cmd.ref}: container {rec.id} is not running"
                )
            if sig == SIGKILL:
                # moby waits briefly for the exit so that a following `rm` sees it stopped.
                await self.core.wait_exit(rec, 10.0)
            return Done()

    async def _signal(self, rec: Record, sig: int) -> bool:
        """Send sig to the init process; publish `kill`. False if the task is already gone."""
        try:
            await self.core.agent(rec.node, TaskKill(container_id=rec.id, signal=sig), Done)
        except (NotFound, Conflict):
            # The task vanished under us: let reconcile record the exit right away.
            await self.exits.reconcile_once()
            return False
        await self.core.events.container(rec, "kill", {"signal": str(sig)})
        return True

    async def _settle_restarting(self, rec: Record) -> bool:
        """Cancel a pending restart, leaving the container exited; True if there was one."""
        if rec.state.status != "restarting":
            return False
        async with self.core.lock(rec.id):
            if rec.state.status != "restarting":
                return False
            if self.core.restarter is not None:
                self.core.restarter.cancel(rec.id)
            rec.state.status = "exited"
            await self.store.save(rec)
            self.core.notify_exit(rec.id)
            return True

    async def _kill_and_wait(self, rec: Record) -> None:
        rec.manually_stopped = True
        if await self._settle_restarting(rec):
            return
        if rec.alive:
            await self._signal(rec, SIGKILL)
        if not await self.core.wait_exit(rec, KILL_WAIT):
            await self.exits.reconcile_once()
            if rec.alive:
                raise InternalError(
                    f"tried to kill container, but did not receive an exit event: {rec.id}"
                )

    # --- remove ----------------------------------------------------------------------------------

    async def remove(self, cmd: ContainerRemove) -> Done:
        rec = self.store.lookup(cmd.ref)
        with self.core.container_span(rec, "container remove"):
            if rec.id in self.core.removing:
                raise Conflict(f"removal of container {cmd.ref} is already in progress")
            if rec.running and not cmd.force:
                raise Conflict(
                    f'cannot remove container "/{rec.name}": container is running: '
                    "stop the container before removing or force remove"
                )
            if cmd.volumes:
                pass  # berth has no volumes yet: nothing anonymous to remove with the container
            self.core.removing.add(rec.id)
            try:
                # Kill outside the lock (the exit handler needs it), destroy under it; a start
                # that was already under way when `rm` came finishes first, then is killed.
                for _ in range(3):
                    if rec.running:
                        await self._kill_and_wait(rec)
                    async with self.core.lock(rec.id):
                        if rec.running:
                            if not cmd.force:
                                raise Conflict(
                                    f'cannot remove container "/{rec.name}": container is '
                                    "running: stop the container before removing or force remove"
                                )
                            continue
                        await self.core.destroy(rec)
                        return Done()
                raise InternalError(f"could not stop container {rec.id} to remove it")
            finally:
                self.core.removing.discard(rec.id)

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, cmd: ContainerGet) -> ContainerDetail:
        return ContainerDetail(container=views.inspect(self.store.lookup(cmd.ref)))

    async def list(self, cmd: ContainerList) -> ContainerListing:
        records = listing.select(
            self.store.all(),
            all_=cmd.all,
            limit=cmd.limit,
            filters=cmd.filters,
            lookup=self.store.lookup,
        )
        return ContainerListing(items=[views.summary(r) for r in records])

    async def resolve(self, cmd: ContainerResolve) -> ContainerRef:
        return views.ref(self.store.lookup(cmd.ref))

    async def logs(self, cmd: ContainerLogs) -> LogsStarted:
        if not (cmd.stdout or cmd.stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        rec = self.store.lookup(cmd.ref)
        try:
            await self.core.agent(
                rec.node,
                TaskLogs(
                    container_id=rec.id,
                    stream_subject=cmd.stream_subject,
                    stdout=cmd.stdout,
                    stderr=cmd.stderr,
                    follow=cmd.follow,
                    tail=cmd.tail,
                    since=cmd.since,
                    until=cmd.until,
                ),
                Done,
            )
        except NotFound:
            # Never started: no log yet. Docker answers with an empty log, so do we.
            await self.core.nc.publish(cmd.stream_subject, encode(LogBatch(lines=[], end=True)))
        return LogsStarted(tty=rec.config.tty)

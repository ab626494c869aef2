"""ContainerStart and the restart policy's starts: TaskCreate + TaskStart on the agent, moby's
wording for runc failures, AutoRemove of a container that could not start; TTY resize."""

from __future__ import annotations

import logging

import msgspec
from berth_common.gotime import rfc3339nano
from berth_contracts.agent import (
    TaskCreate,
    TaskCreated,
    TaskDelete,
    TaskResize,
    TaskStart,
    TaskStarted,
)
from berth_contracts.base import Done
from berth_contracts.engine import ContainerResize, ContainerStart
from berth_contracts.errors import BerthError, Conflict, NotFound, NotModified
from berth_contracts.lifecycle import SnapshotGetMounts, SnapshotMounts
from opentelemetry.trace import Span

from berth_engine.containers import hostopts
from berth_engine.containers.exits import ExitHandler
from berth_engine.containers.logdrivers import task_log_config
from berth_engine.containers.mountspec import oci_mounts
from berth_engine.containers.records import Record, State
from berth_engine.containers.taskspec import exit_code_for_start_error, task_spec
from berth_engine.core import EngineCore
from berth_engine.networks.join import join, joined_container
from berth_engine.networks.links import apply_links

log = logging.getLogger(__name__)


class StartService:
    def __init__(self, core: EngineCore, exits: ExitHandler) -> None:
        self.core = core
        self.exits = exits

    async def start(self, cmd: ContainerStart) -> Done:
        rec = self.core.store.lookup(cmd.ref)
        with self.core.container_span(rec, "container start") as span:
            if rec.running or rec.id in self.core.starting:
                raise NotModified("container already started")
            if rec.id in self.core.removing:
                raise Conflict("container is marked for removal and cannot be started")
            # A start through the API re-arms the restart policy (moby resets its manager).
            rec.manually_stopped = False
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
                    rec.state.status != "restarting" or self.core.store.get(rec.id) is not rec
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
        log_config = task_log_config(rec.host_config.log_config)  # dockerd checks values at start
        mounts = self.core.prepared_mounts.pop(rec.id, None) or await self.core.lifecycle(
            rec.node, SnapshotGetMounts(key=rec.id), SnapshotMounts
        )
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
            await self.core.store.save(rec)  # before TaskCreate: a crash must not forget it was sent
        joined = joined_container(self.core.store, rec)
        if joined is not None:
            join(rec, joined)  # before task_spec: HOSTNAME is the joined container's
        hostopts.check_start(rec, self.core.store)
        spec = task_spec(rec)
        # --add-host's records first (host-gateway resolved here only); apply_links adds the
        # links' after them, in libnetwork's order.
        spec = msgspec.structs.replace(
            spec,
            extra_hosts=hostopts.add_host_records(
                list(rec.host_config.extra_hosts or []), self._host_gateway()
            ),
        )
        if rec.endpoints:
            networks, ports = self.core.networks.attach(rec)
            spec = msgspec.structs.replace(spec, networks=networks, port_mappings=ports)
        spec = apply_links(self.core.store, rec, spec)
        # Create and start in one agent call, unless the terminal's initial size has to be set
        # in between (moby applies HostConfig.ConsoleSize after create, before start).
        start_now = not self._needs_console_size(rec)
        created = await self.core.agent(
            rec.node,
            TaskCreate(
                container_id=rec.id,
                spec=spec,
                rootfs=[*mounts.mounts, *oci_mounts(rec.mounts)],
                start=start_now,
                log=log_config,
            ),
            TaskCreated,
        )
        rec.has_task = True
        rec.log_path = created.log_path or rec.log_path
        if start_now:
            pid, started_at = created.pid, created.started_at
        else:
            pid, started_at = await self._start_created(rec)
        self.core.arm_exit(rec.id)
        rec.state = State(
            status="running",
            pid=pid,
            started_at=started_at or rfc3339nano(),
            finished_at=rec.state.finished_at,
        )
        span.set_attribute("container.pid", pid)
        await self.core.store.save(rec)

    def _host_gateway(self) -> str:
        bridge = self.core.networks.nets.by_name("bridge")
        return bridge.gateway if bridge is not None else ""

    async def _start_created(self, rec: Record) -> tuple[int, str]:
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
        return started.pid, started.started_at

    @staticmethod
    def _needs_console_size(rec: Record) -> bool:
        size = rec.host_config.console_size or []
        return bool(rec.config.tty and len(size) == 2 and (size[0] or size[1]))

    async def _initial_console_size(self, rec: Record) -> None:
        """moby applies HostConfig.ConsoleSize ([height, width]) between create and start."""
        if not self._needs_console_size(rec):
            return
        size = rec.host_config.console_size or []
        try:
            await self.core.agent(
                rec.node, TaskResize(container_id=rec.id, height=size[0], width=size[1]), Done
            )
        except BerthError as exc:  # a wrong initial size must not fail the start
            log.warning("initial console size for %s: %s", rec.short_id, exc.message)

    async def resize(self, cmd: ContainerResize) -> Done:
        rec = self.core.store.lookup(cmd.ref)
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

    async def _start_failed(self, rec: Record, err: BerthError) -> BerthError:
        rec.state.error = err.message
        if rec.state.status == "restarting":
            rec.state.status = "exited"  # the restart failed: no more attempts
            self.core.notify_exit(rec.id)
        rec.state.exit_code = exit_code_for_start_error(err.message)  # moby's setExitCodeFromError
        await self.core.store.save(rec)
        if rec.host_config.auto_remove and rec.id not in self.core.removing:
            # `docker run --rm` waits for removal even when start fails: remove now.
            await self.core.auto_remove(rec, "removal after a failed start")
        return err

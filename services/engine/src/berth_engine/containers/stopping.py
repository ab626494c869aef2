"""ContainerStop, ContainerKill and ContainerRemove: signals, waiting for the exit, escalation
to SIGKILL, and removal of everything a container owns."""

from __future__ import annotations

import logging

from berth_contracts.agent import TaskKill
from berth_contracts.base import Done
from berth_contracts.engine import ContainerKill, ContainerRemove, ContainerStop
from berth_contracts.errors import Conflict, InternalError, NotFound, NotModified

from berth_engine.containers.exits import ExitHandler
from berth_engine.containers.records import Record
from berth_engine.containers.signals import SIGKILL, SIGTERM, parse_signal
from berth_engine.core import EngineCore
from berth_engine.networks.links import remove_link

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 30.0  # after SIGKILL the kernel is quick; this only bounds a lost exit event
FOREVER = 365 * 24 * 3600.0  # Docker's negative stop timeout: wait as long as it takes


class StopService:
    def __init__(self, core: EngineCore, exits: ExitHandler) -> None:
        self.core = core
        self.exits = exits

    async def stop(self, cmd: ContainerStop) -> Done:
        rec = self.core.store.lookup(cmd.ref)
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
        rec = self.core.store.lookup(cmd.ref)
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
            self.core.restarter.cancel(rec.id)
            rec.state.status = "exited"
            await self.core.store.save(rec)
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

    async def remove(self, cmd: ContainerRemove) -> Done:
        if cmd.link:  # `docker rm --link /parent/alias`: only the link goes
            parent = remove_link(self.core.store, cmd.ref)
            async with self.core.lock(parent.id):
                await self.core.store.save(parent)
            return Done()
        rec = self.core.store.lookup(cmd.ref)
        with self.core.container_span(rec, "container remove"):
            if rec.id in self.core.removing:
                raise Conflict(f"removal of container {cmd.ref} is already in progress")
            if rec.running and not cmd.force:
                raise Conflict(
                    f'cannot remove container "/{rec.name}": container is running: '
                    "stop the container before removing or force remove"
                )
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
                        await self.core.destroy(rec, volumes=cmd.volumes)
                        return Done()
                raise InternalError(f"could not stop container {rec.id} to remove it")
            finally:
                self.core.removing.discard(rec.id)

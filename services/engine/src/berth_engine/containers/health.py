"""Healthchecks (moby's daemon/health.go): probes run as execs on their interval while the
container runs; State.Health keeps the status, failing streak and the last 5 results.

A monitor starts on every `start` event of a container with a healthcheck (and at engine
start-up for running ones) and ends by itself once the run it was started for is over.
"""

from __future__ import annotations

import contextlib
import logging
import time

import anyio
from anyio.abc import TaskGroup
from berth_common.gotime import rfc3339nano
from berth_contracts import subjects
from berth_contracts.codec import decode
from berth_contracts.docker import Event, Health, HealthConfig, HealthLog
from berth_contracts.errors import BerthError
from berth_contracts.execs import ExecConfig
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from berth_engine.containers.execs import ExecService
from berth_engine.containers.records import Record
from berth_engine.core import EngineCore

log = logging.getLogger(__name__)

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


def probe_command(rec: Record, check: HealthConfig) -> list[str] | None:
    """The probe's argv; None when the container has no (enabled) healthcheck."""
    test = list(check.test or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        shell = list(rec.config.shell or ["/bin/sh", "-c"])
        return [*shell, " ".join(test[1:])]
    return None


def health_text(health: Health | None) -> str:
    """What moby adds to `Up ...` in docker ps: "(healthy)", "(health: starting)"."""
    if health is None or health.status == "none":
        return ""
    return " (health: starting)" if health.status == STARTING else f" ({health.status})"


class HealthMonitor:
    def __init__(self, core: EngineCore, execs: ExecService, tg: TaskGroup) -> None:
        self.core = core
        self.execs = execs
        self.tg = tg
        self.running: dict[str, str] = {}  # container id -> started_at of the run monitored

    async def subscribe(self, nc: NATS) -> None:
        await nc.subscribe(subjects.docker_events("container", "*"), cb=self._on_event)
        for rec in self.core.store.all():
            if rec.state.status in ("running", "paused"):
                self.watch(rec, fresh=False)

    async def _on_event(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):
            event = decode(msg.data, Event)
            if event.Action == "start":
                rec = self.core.store.get(event.Actor.ID)
                if rec is not None:
                    self.watch(rec, fresh=True)

    def watch(self, rec: Record, fresh: bool) -> None:
        check = rec.config.healthcheck
        if check is None or probe_command(rec, check) is None:
            return
        if self.running.get(rec.id) == rec.state.started_at:
            return  # this run is watched already
        if fresh or rec.state.health is None:
            rec.state.health = Health(status=STARTING)
        self.running[rec.id] = rec.state.started_at
        self.tg.start_soon(self._monitor, rec, rec.state.started_at)

    def _same_run(self, rec: Record, started_at: str) -> bool:
        return (
            self.core.store.get(rec.id) is rec and rec.alive and rec.state.started_at == started_at
        )

    async def _monitor(self, rec: Record, started_at: str) -> None:
        check = rec.config.healthcheck
        assert check is not None
        interval = (check.interval or DEFAULT_INTERVAL) / SECOND
        start_interval = (check.start_interval or DEFAULT_START_INTERVAL) / SECOND
        start_period_end = time.monotonic() + check.start_period / SECOND
        try:
            while True:
                in_start = time.monotonic() < start_period_end
                await anyio.sleep(start_interval if in_start else interval)
                if not self._same_run(rec, started_at):
                    return
                if rec.state.status == "paused":
                    continue  # moby skips probes of a paused container
                await self._probe(rec, check, in_start)
        except Exception:  # noqa: BLE001 - a broken monitor must not take the engine down
            log.exception("health monitor of %s", rec.short_id)
        finally:
            if self.running.get(rec.id) == started_at:
                del self.running[rec.id]

    async def _probe(self, rec: Record, check: HealthConfig, in_start_period: bool) -> None:
        argv = probe_command(rec, check)
        assert argv is not None
        timeout = (check.timeout or DEFAULT_TIMEOUT) / SECOND
        start = rfc3339nano()
        config = ExecConfig(attach_stdout=True, attach_stderr=True, cmd=argv)
        try:
            entry = self.execs.new_exec(rec, config)
        except BerthError:
            return  # stopped or paused meanwhile
        try:
            await self.execs.run(entry)
            exit_code: int = -1
            output = ""
            with anyio.move_on_after(timeout):
                await entry.done.wait()
                exit_code = entry.exit_code if entry.exit_code is not None else -1
                output = entry.output[:MAX_OUTPUT].decode(errors="replace")
            if not entry.done.is_set():
                output = f"Health check exceeded timeout ({_seconds(timeout)})"
        except BerthError as exc:
            exit_code, output = -1, exc.message
        finally:
            self.execs.execs.pop(entry.id, None)  # probes are not kept, as in moby
        if self.core.store.get(rec.id) is not rec or not rec.alive:
            return  # the container stopped meanwhile: its last result is not recorded
        result = HealthLog(start=start, end=rfc3339nano(), exit_code=exit_code, output=output)
        await self._record(rec, check, result, in_start_period)

    async def _record(
        self, rec: Record, check: HealthConfig, result: HealthLog, in_start_period: bool
    ) -> None:
        health = rec.state.health or Health(status=STARTING)
        old = health.status
        log_entries = [*health.log, result][-MAX_LOG_ENTRIES:]
        retries = check.retries or DEFAULT_RETRIES
        if result.exit_code == 0:
            health = Health(status=HEALTHY, failing_streak=0, log=log_entries)
        elif in_start_period and old == STARTING:
            # Failures during the start period do not count (moby), only the log grows.
            health = Health(status=old, failing_streak=health.failing_streak, log=log_entries)
        else:
            streak = health.failing_streak + 1
            status = UNHEALTHY if streak >= retries else old
            health = Health(status=status, failing_streak=streak, log=log_entries)
        rec.state.health = health
        await self.core.store.save(rec)
        if health.status != old:
            await self.core.events.container(rec, f"health_status: {health.status}")


def _seconds(value: float) -> str:
    """Go's time.Duration String for whole and fractional seconds: 30s, 1.5s."""
    return f"{value:g}s"

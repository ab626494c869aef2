"""Container exits: TaskExit events from agents, and the reconcile that catches missed ones.

Core NATS is at-most-once and the engine may be down when a container dies, so events are only
the fast path; every few seconds the engine asks each node's agent about the containers it
believes are running, and treats a stopped task as an exit and a vanished one as exit 255.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import anyio
from anyio.abc import TaskGroup
from berth_common.gotime import is_zero, parse_ns, rfc3339nano
from berth_contracts import subjects
from berth_contracts.agent import TaskDelete, TaskExit, TaskGet, TaskListAll, TaskState, TaskStates
from berth_contracts.base import Done
from berth_contracts.codec import decode
from berth_contracts.errors import BerthError, NotFound
from berth_kit.tracing import extract
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import context as otel_context

from berth_engine.containers.records import Record
from berth_engine.containers.restarts import wants_restart
from berth_engine.core import EngineCore

log = logging.getLogger(__name__)

UNKNOWN_EXIT = 255  # moby's code for a container whose task vanished


class ExitHandler:
    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self._limit = anyio.Semaphore(32)

    async def subscribe(self, nc: NATS, tg: TaskGroup) -> None:
        async def on_msg(msg: Msg) -> None:
            await self._limit.acquire()
            tg.start_soon(self._process, msg)

        await nc.subscribe(subjects.TASK_EVENTS_ALL, queue=subjects.ENGINE_QUEUE, cb=on_msg)

    async def _process(self, msg: Msg) -> None:
        try:
            try:
                event = decode(msg.data, TaskExit)
            except Exception:  # noqa: BLE001 - not an exit (other task events may share the subject)
                return
            # The exit is traced in the container's own trace (see EngineCore.container_span);
            # the publisher's context, if it sent one, becomes that span's link.
            token = otel_context.attach(extract(dict(msg.headers or {})))
            try:
                await self.on_task_exit(event)
            finally:
                otel_context.detach(token)
        except Exception:  # noqa: BLE001 - one bad event must not stop the others
            log.exception("handling a task exit failed")
        finally:
            self._limit.release()

    async def on_task_exit(self, event: TaskExit) -> None:
        rec = self.core.store.get(event.container_id)
        if rec is None:
            return
        if rec.id in self.core.starting:
            # The exit raced the reply to TaskStart: the start handler applies it when done.
            self.core.starting[rec.id] = event
            return
        async with self.core.lock(rec.id):
            if not rec.alive:
                return  # a duplicate, or an exit already found by reconcile
            if event.pid and rec.state.pid and event.pid != rec.state.pid:
                return  # an exit of an earlier run of this container
            await self.record_exit(rec, event.exit_code, event.oom_killed, event.exited_at)

    async def record_exit(
        self, rec: Record, exit_code: int, oom_killed: bool, exited_at: str
    ) -> None:
        """Mark the container exited, tell the world, release the task, honour AutoRemove.

        Idempotent: the state flips synchronously before the first await, so a duplicate that
        arrives meanwhile finds the container not running. The caller holds the container's lock.
        """
        if not rec.alive:
            return
        with self.core.container_span(rec, "container exit") as span:
            span.set_attribute("container.exit_code", exit_code)
            st = rec.state
            st.status = "exited"
            st.exit_code = exit_code
            st.oom_killed = oom_killed
            st.pid = 0
            st.finished_at = exited_at if not is_zero(exited_at) else rfc3339nano()
            await self.core.store.save(rec)
            if oom_killed:
                await self.core.events.container(rec, "oom")
            duration = max(0, (parse_ns(st.finished_at) - parse_ns(st.started_at)) // 1_000_000_000)
            await self.core.events.container(
                rec, "die", {"exitCode": str(exit_code), "execDuration": str(duration)}
            )
            self.core.notify_exit(rec.id)
            # A removal that follows (AutoRemove, or an `rm -f` waiting for this exit) deletes
            # the task with its TaskPurge: no TaskDelete round trip of its own here.
            removal_follows = rec.host_config.auto_remove or rec.id in self.core.removing
            if rec.has_task and not removal_follows:
                # Not saved on its own: a stale has_task only costs one idempotent TaskDelete
                # (every start and removal clears whatever an earlier run left).
                try:
                    await self.core.agent(rec.node, TaskDelete(container_id=rec.id), Done)
                    rec.has_task = False
                except NotFound:
                    rec.has_task = False
                except BerthError as exc:
                    log.warning("TaskDelete %s after exit: %s", rec.short_id, exc.message)
            if rec.id in self.core.removing:
                return
            if rec.host_config.auto_remove:
                await self.auto_remove(rec)
            elif wants_restart(rec, exit_code):
                self.core.restarter.schedule(rec)
                await self.core.store.save(rec)

    async def auto_remove(self, rec: Record) -> None:
        """Remove after exit (the caller holds the container's lock)."""
        await self.core.auto_remove(rec, "auto-remove")

    # --- reconcile -------------------------------------------------------------------------------

    async def reconcile_once(self) -> None:
        by_node: dict[str, list[Record]] = defaultdict(list)
        for rec in self.core.store.all():
            if rec.host_config.auto_remove and rec.state.status == "exited":
                # An AutoRemove that failed (lifecycle or agent away): `docker run --rm` waits
                # for the removal, so keep trying.
                await self._retry_auto_remove(rec)
                continue
            # Containers being removed are included: `rm -f` waits for their exit like stop.
            if rec.alive and rec.id not in self.core.starting:
                by_node[rec.node].append(rec)
        for node, records in by_node.items():
            await self._reconcile_node(node, records)

    async def _retry_auto_remove(self, rec: Record) -> None:
        if rec.id in self.core.removing:
            return
        async with self.core.lock(rec.id):
            if rec.state.status == "exited" and self.core.store.get(rec.id) is rec:
                await self.auto_remove(rec)

    async def _reconcile_node(self, node: str, records: list[Record]) -> None:
        try:
            listing = await self.core.agent(node, TaskListAll(), TaskStates, within=5.0, attempts=1)
        except BerthError as exc:
            # No answer is not evidence of death: leave the records as they are.
            log.debug("reconcile: agent on %s unavailable (%s)", node, exc.message)
            return
        known = {t.container_id: t for t in listing.tasks}
        for rec in records:
            task: TaskState | None | bool = known.get(rec.id)
            if task is None:
                task = await self._task_get(node, rec.id)
                if task is False:
                    continue
            await self._apply(rec, task)

    async def _task_get(self, node: str, container_id: str) -> TaskState | None | bool:
        """The task, None when the agent says there is none, False when it did not answer."""
        try:
            return await self.core.agent(
                node, TaskGet(container_id=container_id), TaskState, within=5.0, attempts=1
            )
        except NotFound:
            return None
        except BerthError:
            return False

    async def _apply(self, rec: Record, task: TaskState | None | bool) -> None:
        async with self.core.lock(rec.id):
            await self._apply_locked(rec, task)

    async def _apply_locked(self, rec: Record, task: TaskState | None | bool) -> None:
        if not rec.alive or rec.id in self.core.starting:
            return  # changed while we were asking
        if self.core.store.get(rec.id) is not rec:
            return
        if task is None or (isinstance(task, TaskState) and task.status == "unknown"):
            log.info(
                "reconcile: %s has no task; marking it exited (%d)", rec.short_id, UNKNOWN_EXIT
            )
            rec.has_task = False
            await self.record_exit(rec, UNKNOWN_EXIT, False, "")
        elif isinstance(task, TaskState) and task.status == "stopped":
            log.info("reconcile: %s stopped with %d while unobserved", rec.short_id, task.exit_code)
            await self.record_exit(rec, task.exit_code, task.oom_killed, task.exited_at)

    async def reconcile_loop(self, interval: float) -> None:
        while True:
            try:
                await self.reconcile_once()
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad round
                log.exception("reconcile failed")
            await anyio.sleep(interval)

"""Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`), like moby's
restartmanager: back-off from 100 ms doubling to 1 min, reset after a run of 10 s or more; a
manual stop cancels; the state is "restarting" while the back-off runs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from berth_common.gotime import parse_ns
from berth_contracts.docker import RestartPolicy
from berth_contracts.errors import InvalidParameter

from berth_engine.containers.records import Record

log = logging.getLogger(__name__)

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # seconds of run time that make the next failure start from FIRST_DELAY


def validate_policy(policy: RestartPolicy, auto_remove: bool) -> None:
    """dockerd 20.10's checks at create and at update (verifyContainerSettings), its words.

    An empty name is "no policy" and takes any count, as in dockerd (moby 25 still allows it).
    """
    if auto_remove and policy.name not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if policy.name in ("always", "unless-stopped", "no"):
        if policy.maximum_retry_count != 0:
            raise InvalidParameter(
                f"maximum retry count cannot be used with restart policy '{policy.name}'"
            )
    elif policy.name == "on-failure":
        if policy.maximum_retry_count < 0:
            raise InvalidParameter("maximum retry count cannot be negative")
    elif policy.name != "":
        raise InvalidParameter(f"invalid restart policy '{policy.name}'")


def wants_restart(rec: Record, exit_code: int) -> bool:
    if rec.manually_stopped:
        return False
    policy = rec.host_config.restart_policy
    if policy.name in ("always", "unless-stopped"):
        return True
    if policy.name == "on-failure":
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit == 0 or rec.restart_count < limit)
    return False


def next_delay(previous: float, ran_for: float) -> float:
    if ran_for >= RESET_AFTER or previous <= 0:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)


class Restarter:
    """Schedules the restarts; the caller holds the container's lock when scheduling."""

    def __init__(self, tg: TaskGroup, start: Callable[[Record], Awaitable[None]]) -> None:
        self._tg = tg
        self._start = start
        self._delay: dict[str, float] = {}
        self._pending: dict[str, anyio.CancelScope] = {}

    def schedule(self, rec: Record) -> None:
        ran_for = (parse_ns(rec.state.finished_at) - parse_ns(rec.state.started_at)) / 1e9
        delay = next_delay(self._delay.get(rec.id, 0.0), ran_for)
        self._delay[rec.id] = delay
        rec.restart_count += 1
        rec.state.status = "restarting"
        scope = anyio.CancelScope()
        self.cancel(rec.id)
        self._pending[rec.id] = scope
        self._tg.start_soon(self._later, rec, delay, scope)

    def resume(self, rec: Record) -> None:
        """Re-arm a restart whose back-off was lost with the previous engine process."""
        scope = anyio.CancelScope()
        self.cancel(rec.id)
        self._pending[rec.id] = scope
        self._tg.start_soon(self._later, rec, FIRST_DELAY, scope)

    def cancel(self, container_id: str) -> bool:
        """Cancel a pending restart; True if there was one."""
        scope = self._pending.pop(container_id, None)
        if scope is None:
            return False
        scope.cancel()
        return True

    def forget(self, container_id: str) -> None:
        self.cancel(container_id)
        self._delay.pop(container_id, None)

    async def _later(self, rec: Record, delay: float, scope: anyio.CancelScope) -> None:
        with scope:
            await anyio.sleep(delay)
        if scope.cancel_called or self._pending.get(rec.id) is not scope:
            return
        del self._pending[rec.id]
        try:
            await self._start(rec)
        except Exception:  # noqa: BLE001 - the start path records its own failure
            log.exception("restart of %s failed", rec.short_id)

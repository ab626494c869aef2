"""docker update / top / stats: limits and restart policy changed in the record (and on the
running task), processes and cgroup readings from the container's agent."""

from __future__ import annotations

import msgspec
from berth_contracts.agentops import (
    TaskStats,
    TaskStatsSample,
    TaskTop,
    TaskTopResult,
    TaskUpdate,
)
from berth_contracts.base import Done
from berth_contracts.containerops import (
    ContainerStats,
    ContainerTop,
    ContainerUpdate,
    ContainerUpdated,
    UpdateConfig,
)
from berth_contracts.docker import HostConfig
from berth_contracts.errors import Conflict, InvalidParameter

from berth_engine.containers.records import Record
from berth_engine.containers.restarts import validate_policy
from berth_engine.core import EngineCore

MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000  # what a NanoCpus limit is expressed in (µs), as in moby


def _check_policy(config: UpdateConfig, rec: Record) -> None:
    policy = config.restart_policy
    if policy is None:
        return
    if rec.host_config.auto_remove and policy.name not in ("", "no"):
        raise InvalidParameter(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        )
    validate_policy(policy, auto_remove=False)  # the same checks and words as at create


def updated_host_config(hc: HostConfig, config: UpdateConfig, rec: Record) -> HostConfig:
    """moby's UpdateContainer checks, then the new HostConfig."""
    _check_policy(config, rec)
    if config.memory and config.memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = config.memory_swap or hc.memory_swap
    if config.memory and swap > 0 and config.memory > swap:
        raise InvalidParameter(
            "Memory limit should be smaller than already set memoryswap limit, "
            "update the memoryswap at the same time"
        )
    if config.nano_cpus and (hc.cpu_quota or config.cpu_quota):
        raise InvalidParameter(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
        )
    if config.cpu_quota and hc.nano_cpus:
        raise InvalidParameter(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        )
    changes: dict[str, object] = {
        name: getattr(config, name)
        for name in (
            "memory",
            "memory_swap",
            "memory_reservation",
            "nano_cpus",
            "cpu_shares",
            "cpu_period",
            "cpu_quota",
        )
        if getattr(config, name)
    }
    if config.pids_limit is not None:
        changes["pids_limit"] = config.pids_limit if config.pids_limit > 0 else None
    if config.restart_policy is not None:
        changes["restart_policy"] = config.restart_policy
    return msgspec.structs.replace(hc, **changes)


class ResourceService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def update(self, cmd: ContainerUpdate) -> ContainerUpdated:
        rec = self.core.store.lookup(cmd.ref)
        async with self.core.lock(rec.id):
            with self.core.container_span(rec, "container update"):
                new_hc = updated_host_config(rec.host_config, cmd.config, rec)
                if rec.alive:
                    await self.core.agent(rec.node, _task_update(rec.id, cmd.config), Done)
                rec.host_config = new_hc
                await self.core.store.save(rec)
                await self.core.events.container(rec, "update")
        return ContainerUpdated()

    def _running(self, ref: str) -> Record:
        rec = self.core.store.lookup(ref)
        if not rec.alive:
            raise Conflict(f"Container {rec.id} is not running")
        return rec

    async def top(self, cmd: ContainerTop) -> TaskTopResult:
        rec = self._running(cmd.ref)
        return await self.core.agent(
            rec.node, TaskTop(container_id=rec.id, ps_args=cmd.ps_args), TaskTopResult
        )

    async def stats(self, cmd: ContainerStats) -> TaskStatsSample:
        rec = self._running(cmd.ref)
        return await self.core.agent(
            rec.node, TaskStats(container_id=rec.id), TaskStatsSample, within=10.0
        )


def _task_update(cid: str, c: UpdateConfig) -> TaskUpdate:
    quota, period = c.cpu_quota, c.cpu_period
    if c.nano_cpus:
        period = CPU_PERIOD
        quota = c.nano_cpus * CPU_PERIOD // 1_000_000_000
    return TaskUpdate(
        container_id=cid,
        memory=c.memory,
        memory_swap=c.memory_swap,
        cpu_shares=c.cpu_shares,
        cpu_period=period,
        cpu_quota=quota,
        pids_limit=c.pids_limit or 0,
    )

"""More container commands on the engine: pause/unpause (freezer cgroup), update, top, stats."""

from __future__ import annotations

import msgspec
from msgspec import field

from berth_contracts.base import Command, Reply
from berth_contracts.docker import RestartPolicy


class ContainerPause(Command, frozen=True):
    """POST /containers/{id}/pause: Done; `pause` event. moby's Conflicts when not running or
    already paused."""

    ref: str


class ContainerUnpause(Command, frozen=True):
    """POST /containers/{id}/unpause: Done; `unpause` event. Conflict when not paused."""

    ref: str


class UpdateConfig(msgspec.Struct, rename="pascal", omit_defaults=False):
    """Body of POST /containers/{id}/update (Resources + RestartPolicy); 0 = unchanged."""

    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = field(default=0, name="NanoCpus")
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    pids_limit: int | None = None
    restart_policy: RestartPolicy | None = None


class ContainerUpdate(Command, frozen=True):
    ref: str
    config: UpdateConfig


class ContainerUpdated(Reply, frozen=True):
    warnings: list[str] = msgspec.field(default_factory=list)


class ContainerTop(Command, frozen=True):
    """GET /containers/{id}/top: the agent's TaskTopResult."""

    ref: str
    ps_args: str = "-ef"


class ContainerStats(Command, frozen=True):
    """GET /containers/{id}/stats: one TaskStatsSample (the gateway shapes and streams them)."""

    ref: str

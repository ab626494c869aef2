"""More container commands on the engine: pause/unpause (freezer cgroup)."""

from __future__ import annotations

from berth_contracts.base import Command


class ContainerPause(Command, frozen=True):
    """POST /containers/{id}/pause: Done; `pause` event. moby's Conflicts when not running or
    already paused."""

    ref: str


class ContainerUnpause(Command, frozen=True):
    """POST /containers/{id}/unpause: Done; `unpause` event. Conflict when not paused."""

    ref: str

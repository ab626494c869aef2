"""docker pause / unpause: freeze and thaw a running container through its agent (runc pause)."""

from __future__ import annotations

from berth_contracts.agent import TaskPause, TaskResume
from berth_contracts.base import Done
from berth_contracts.containerops import ContainerPause, ContainerUnpause
from berth_contracts.errors import Conflict

from berth_engine.core import EngineCore


class PauseService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def pause(self, cmd: ContainerPause) -> Done:
        rec = self.core.store.lookup(cmd.ref)
        async with self.core.lock(rec.id):
            if rec.state.status == "paused":
                raise Conflict(f"Container {rec.id} is already paused")
            if rec.state.status != "running":
                raise Conflict(f"Container {rec.id} is not running")
            with self.core.container_span(rec, "container pause"):
                await self.core.agent(rec.node, TaskPause(container_id=rec.id), Done)
                rec.state.status = "paused"
                await self.core.store.save(rec)
                await self.core.events.container(rec, "pause")
        return Done()

    async def unpause(self, cmd: ContainerUnpause) -> Done:
        rec = self.core.store.lookup(cmd.ref)
        async with self.core.lock(rec.id):
            if rec.state.status != "paused":
                raise Conflict(f"Container {rec.id} is not paused")
            with self.core.container_span(rec, "container unpause"):
                await self.core.agent(rec.node, TaskResume(container_id=rec.id), Done)
                rec.state.status = "running"
                await self.core.store.save(rec)
                await self.core.events.container(rec, "unpause")
        return Done()

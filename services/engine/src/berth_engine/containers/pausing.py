"""docker pause / unpause: freeze and thaw a running container through its agent (runc pause)."""

from __future__ import annotations

from berth_contracts.agent import TaskPause, TaskResume
from berth_contracts.base import Command, Done
from berth_contracts.containerops import ContainerPause, ContainerUnpause
from berth_contracts.errors import Conflict

from berth_engine.core import EngineCore


class PauseService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def pause(self, cmd: ContainerPause) -> Done:
        return await self._switch(cmd.ref, pause=True)

    async def unpause(self, cmd: ContainerUnpause) -> Done:
        return await self._switch(cmd.ref, pause=False)

    async def _switch(self, ref: str, pause: bool) -> Done:
        rec = self.core.store.lookup(ref)
        async with self.core.lock(rec.id):
            status = rec.state.status
            if pause and status == "paused":
                raise Conflict(f"Container {rec.id} is already paused")
            if pause and status != "running":
                raise Conflict(f"Container {rec.id} is not running")
            if not pause and status != "paused":
                raise Conflict(f"Container {rec.id} is not paused")
            action = "pause" if pause else "unpause"
            with self.core.container_span(rec, f"container {action}"):
                task: Command = (TaskPause if pause else TaskResume)(container_id=rec.id)
                await self.core.agent(rec.node, task, Done)
                rec.state.status = "paused" if pause else "running"
                await self.core.store.save(rec)
                await self.core.events.container(rec, action)
        return Done()

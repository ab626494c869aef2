"""POST /containers/{id}/rename: a new name for a container, with moby's checks and event."""

from __future__ import annotations

from berth_contracts.base import Done
from berth_contracts.engine import ContainerRename
from berth_contracts.errors import InvalidParameter

from berth_engine.containers.naming import validate_name
from berth_engine.core import EngineCore


class RenameService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def rename(self, cmd: ContainerRename) -> Done:
        if not cmd.name:
            raise InvalidParameter("Neither old nor new names may be empty")
        rec = self.core.store.lookup(cmd.ref)
        new_name = validate_name(cmd.name)
        if new_name == rec.name:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        with self.core.container_span(rec, "container rename"):
            old_name = rec.name
            await self.core.store.rename(rec, new_name)
            await self.core.events.container(rec, "rename", {"oldName": "/" + old_name})
        return Done()

"""ContainerArchive (`docker cp`): which filesystem the copy sees, handed to lifecycle."""

from __future__ import annotations

from berth_contracts.archives import ArchiveMount, ArchiveOpen, ArchiveOpened, ContainerArchive
from berth_contracts.errors import Conflict

from berth_engine.core import EngineCore


class ArchiveService:
    def __init__(self, core: EngineCore) -> None:
        self.core = core

    async def archive(self, cmd: ContainerArchive) -> ArchiveOpened:
        rec = self.core.store.lookup(cmd.ref)
        if rec.id in self.core.removing:
            raise Conflict(f"container {rec.id} is marked for removal")
        # A running container is copied through its own mount namespace (volumes, tmpfs and
        # all); a stopped one through its snapshot with its volumes and binds on top.
        pid = rec.state.pid if rec.alive else 0
        mounts = [
            ArchiveMount(source=m.source, target=m.destination, readonly=not m.rw)
            for m in rec.mounts
            if m.type in ("bind", "volume")
        ]
        return await self.core.lifecycle(
            rec.node,
            ArchiveOpen(
                key=rec.id,
                container_id=rec.id,
                path=cmd.path,
                mode=cmd.mode,
                pid=pid,
                mounts=mounts,
                no_overwrite_dir_non_dir=cmd.no_overwrite_dir_non_dir,
                make_parents=cmd.make_parents,
                parents_owner=cmd.parents_owner,
            ),
            ArchiveOpened,
        )

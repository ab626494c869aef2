"""`docker commit`, `diff`, `export`, `history`: the engine knows the container (config, state,
pause), lifecycle owns its writable layer and the images."""

from __future__ import annotations

import contextlib

import anyio
from berth_contracts.agent import TaskPurge
from berth_contracts.base import Done
from berth_contracts.containerops import ContainerPause, ContainerUnpause
from berth_contracts.errors import Conflict
from berth_contracts.imaging import (
    ChangeList,
    ContainerChanges,
    ContainerCommit,
    ContainerCommitted,
    ContainerExport,
    ExportTarget,
    HistoryItems,
    ImageCacheHit,
    ImageCacheLookup,
    ImageHistoryGet,
    SnapshotCommit,
    SnapshotCommitted,
    SnapshotDiff,
    SnapshotExport,
)

from berth_engine.containers.pausing import PauseService
from berth_engine.containers.records import Record
from berth_engine.core import EngineCore
from berth_engine.images.refs import validate_repo_tag

COMMIT_TIMEOUT = 1800.0  # tarring, gzipping and unpacking a big writable layer


class ImagingService:
    def __init__(self, core: EngineCore, pauses: PauseService) -> None:
        self.core = core
        self.pauses = pauses

    def _lookup(self, ref: str, what: str) -> Record:
        rec = self.core.store.lookup(ref)
        if rec.id in self.core.removing:
            raise Conflict(f"You cannot {what} container {rec.id} which is being removed")
        if rec.state.status == "dead":
            raise Conflict(f"You cannot {what} container {rec.id} which is Dead")
        return rec

    async def commit(self, cmd: ContainerCommit) -> ContainerCommitted:
        """moby's CreateImageFromContainer: pause (through the pause path, with its events)
        while the layer is read, store, tag, then the container's `commit` event."""
        rec = self._lookup(cmd.ref, "commit")
        repo, tag = validate_repo_tag(cmd.repo, cmd.tag) if cmd.repo else ("", "")
        paused_here = False
        if cmd.pause and not cmd.build_step and rec.state.status == "running":
            await self.pauses.pause(ContainerPause(ref=rec.id))
            paused_here = True
        take = cmd.consume and cmd.build_step and rec.state.status in ("created", "exited")
        if take and (rec.has_task or rec.agent_used):
            # The layer is about to become an image's: its task goes first, so that nothing
            # (the shim's rootfs mount) still has it as an overlay's upper dir.
            await self.core.ignore_missing(self.core.agent(rec.node, TaskPurge(container_id=rec.id), Done))
            rec.has_task = rec.agent_used = False
        try:
            with self.core.container_span(rec, "container commit"):
                done = await self.core.lifecycle(
                    rec.node,
                    SnapshotCommit(
                        key=rec.id,
                        container_id=rec.id,
                        image_id=rec.image_id,
                        container_config=cmd.container_config or rec.config,
                        config=cmd.config or rec.config,
                        merge=not cmd.build_step,
                        take_upper=take,
                        changes=list(cmd.changes),
                        author=cmd.author,
                        comment=cmd.comment,
                        repo=repo,
                        tag=tag,
                    ),
                    SnapshotCommitted,
                    within=COMMIT_TIMEOUT,
                    attempts=1,
                )
        finally:
            if paused_here:
                with anyio.CancelScope(shield=True), contextlib.suppress(Conflict):
                    await self.pauses.unpause(ContainerUnpause(ref=rec.id))
        if cmd.build_step:  # moby's CommitBuildStep publishes no event
            return ContainerCommitted(id=done.id)
        extra = {"comment": cmd.comment, "imageID": done.id, "imageRef": done.ref}
        await self.core.events.container(rec, "commit", extra)
        return ContainerCommitted(id=done.id)

    async def changes(self, cmd: ContainerChanges) -> ChangeList:
        rec = self.core.store.lookup(cmd.ref)
        return await self.core.lifecycle(rec.node, SnapshotDiff(key=rec.id), ChangeList, within=300.0)

    async def export(self, cmd: ContainerExport) -> ExportTarget:
        rec = self._lookup(cmd.ref, "export")
        return await self.core.lifecycle(rec.node, SnapshotExport(key=rec.id), ExportTarget)

    async def history(self, cmd: ImageHistoryGet) -> HistoryItems:
        return await self.core.lifecycle(self.core.node, cmd, HistoryItems)

    async def cache_lookup(self, cmd: ImageCacheLookup) -> ImageCacheHit:
        return await self.core.lifecycle(self.core.node, cmd, ImageCacheHit, within=120.0)

"""dockerd's volume service: `docker volume create/ls/inspect/rm/prune`, the volumes a new
container needs, and removing a container's anonymous volumes with it (`rm -v`, `--rm`)."""

from __future__ import annotations

import logging
import os

import anyio
import msgspec
from berth_contracts.errors import Conflict, InvalidParameter, NotFound
from berth_contracts.volumes import (
    Volume,
    VolumeCreate,
    VolumeDetail,
    VolumeGet,
    VolumeList,
    VolumeListing,
    VolumePrune,
    VolumeRemove,
    VolumesPruned,
)

from berth_engine.containers.listing import label_matches
from berth_engine.containers.mountspec import MountEntry
from berth_engine.containers.records import Record
from berth_engine.containers.store import RecordStore
from berth_engine.prunefilters import check_filter_keys
from berth_engine.volumes.store import ANONYMOUS_LABEL, VolumeStore

log = logging.getLogger(__name__)

_LIST_FILTERS = ("name", "label", "dangling", "driver")
_PRUNE_FILTERS = ("label", "label!", "all")


def _truthy(values: list[str], key: str) -> bool:
    for v in values:
        if v.lower() in ("1", "true"):
            return True
        if v.lower() not in ("0", "false"):
            raise InvalidParameter(f"invalid filter '{key}={v}'")
    return False


class VolumeService:
    def __init__(self, volumes: VolumeStore, store: RecordStore) -> None:
        self.volumes = volumes
        self.store = store

    def users(self, name: str) -> list[str]:
        return [
            rec.id
            for rec in self.store.all()
            if any(m.type == "volume" and m.name == name for m in rec.mounts)
        ]

    # --- container side ----------------------------------------------------------------------
    def prepare(self, entries: list[MountEntry]) -> list[MountEntry]:
        """Create the volumes and bind sources a new container names (dockerd does this at
        create): a missing `-v /host:/ctr` source becomes a directory, like dockerd."""
        out: list[MountEntry] = []
        for e in entries:
            if e.type == "volume":
                vol = self.volumes.create(e.name, e.volume_labels)
                e = msgspec.structs.replace(e, name=vol.name, source=vol.mountpoint)
            elif e.type == "bind" and not os.path.exists(e.source):
                os.makedirs(e.source, mode=0o755, exist_ok=True)
            out.append(e)
        return out

    def volumes_from(self, entries: list[MountEntry], refs: list[str]) -> list[MountEntry]:
        """`--volumes-from ctr[:ro|:rw]`: the other container's volumes and binds (not its
        tmpfs), unless this container mounts something at the same place (moby's rule)."""
        out = list(entries)
        taken = {e.destination for e in entries}
        for spec in refs:
            ref, _, mode = spec.partition(":")
            if mode not in ("", "ro", "rw"):
                raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
            other = self.store.lookup(ref)
            for m in other.mounts:
                if m.type == "tmpfs" or m.destination in taken:
                    continue
                rw = m.rw if not mode else mode == "rw"
                out.append(msgspec.structs.replace(m, rw=rw, copy_up=False, mode=mode or m.mode))
                taken.add(m.destination)
        return out

    def release_anonymous(self, rec: Record) -> None:
        """After the container is gone: its anonymous volumes that nobody else uses."""
        for m in rec.mounts:
            if m.type != "volume" or not self.volumes.exists(m.name):
                continue
            if ANONYMOUS_LABEL not in (self.volumes.get(m.name).labels or {}):
                continue
            if self.users(m.name):
                continue
            try:
                self.volumes.remove(m.name)
            except (Conflict, NotFound, OSError) as exc:
                log.warning("removing anonymous volume %s: %s", m.name, exc)

    # --- API ---------------------------------------------------------------------------------
    async def create(self, cmd: VolumeCreate) -> VolumeDetail:
        if cmd.driver not in ("", "local"):
            raise NotFound(
                f'error looking up volume plugin {cmd.driver}: plugin "{cmd.driver}" not found'
            )
        vol = await anyio.to_thread.run_sync(
            self.volumes.create, cmd.name, dict(cmd.labels), dict(cmd.driver_opts)
        )
        return VolumeDetail(volume=vol)

    async def get(self, cmd: VolumeGet) -> VolumeDetail:
        return VolumeDetail(volume=self.volumes.get(cmd.name))

    async def list_volumes(self, cmd: VolumeList) -> VolumeListing:
        check_filter_keys(cmd.filters, _LIST_FILTERS)
        out: list[Volume] = []
        for vol in self.volumes.all():
            if (names := cmd.filters.get("name")) and not any(n in vol.name for n in names):
                continue
            if (wanted := cmd.filters.get("label")) and not label_matches(vol.labels or {}, wanted):
                continue
            if (drivers := cmd.filters.get("driver")) and "local" not in drivers:
                continue
            if "dangling" in cmd.filters:
                dangling = _truthy(cmd.filters["dangling"], "dangling")
                if dangling == bool(self.users(vol.name)):
                    continue
            out.append(vol)
        return VolumeListing(volumes=out)

    async def remove(self, cmd: VolumeRemove) -> VolumeDetail:
        vol = self.volumes.get(cmd.name) if not cmd.force or self.volumes.exists(cmd.name) else None
        if vol is None:
            return VolumeDetail(volume=Volume(name=cmd.name))  # force: a missing volume is fine
        users = self.users(cmd.name)
        if users:
            raise Conflict(f"remove {cmd.name}: volume is in use - [{', '.join(users)}]")
        await anyio.to_thread.run_sync(self.volumes.remove, cmd.name)
        return VolumeDetail(volume=vol)

    async def prune(self, cmd: VolumePrune) -> VolumesPruned:
        check_filter_keys(cmd.filters, _PRUNE_FILTERS)
        # API ≥ 1.42: only anonymous volumes unless all=true.
        everything = _truthy(cmd.filters.get("all", []), "all")
        deleted: list[str] = []
        reclaimed = 0
        for vol in self.volumes.all():
            labels = vol.labels or {}
            if not everything and ANONYMOUS_LABEL not in labels:
                continue
            if (wanted := cmd.filters.get("label")) and not label_matches(labels, wanted):
                continue
            if (unwanted := cmd.filters.get("label!")) and any(
                label_matches(labels, [u]) for u in unwanted
            ):
                continue
            if self.users(vol.name):
                continue
            reclaimed += await anyio.to_thread.run_sync(self.volumes.remove, vol.name)
            deleted.append(vol.name)
        return VolumesPruned(volumes_deleted=deleted, space_reclaimed=reclaimed)

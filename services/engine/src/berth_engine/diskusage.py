"""`docker system df` (GET /system/df): images, containers and volumes with their sizes, as
dockerd 20.10's SystemDiskUsage answers (lifecycle measures the layers)."""

from __future__ import annotations

import msgspec
from anyio import to_thread
from berth_common.gotime import parse_ns
from berth_contracts.docker import ContainerSummary, ImageSummary
from berth_contracts.engine import ContainerList
from berth_contracts.errors import InvalidParameter
from berth_contracts.imaging import DiskUsage, LayerUsage, LayerUsageGet, SystemDf, VolumeUsage
from berth_contracts.lifecycle import ImageListAll, ImageRecords
from berth_kit.dirsize import directory_size

from berth_engine.containers.queries import QueryService
from berth_engine.core import EngineCore
from berth_engine.images.service import image_summary

DF_TYPES = ("container", "image", "volume", "build-cache")


class DiskUsageService:
    def __init__(self, core: EngineCore, queries: QueryService) -> None:
        self.core = core
        self.queries = queries

    async def df(self, cmd: SystemDf) -> DiskUsage:
        for kind in cmd.types:
            if kind not in DF_TYPES:
                raise InvalidParameter(f"invalid object type: {kind}")
        wanted = set(cmd.types or DF_TYPES)
        usage = await self.core.lifecycle(self.core.node, LayerUsageGet(), LayerUsage)
        out = DiskUsage(layers_size=usage.layers_size)
        if "image" in wanted:
            out = msgspec.structs.replace(out, images=await self._images(usage))
        if "container" in wanted:
            out = msgspec.structs.replace(out, containers=await self._containers(usage))
        if "volume" in wanted:
            out = msgspec.structs.replace(out, volumes=await to_thread.run_sync(self._volumes))
        return out

    async def _images(self, usage: LayerUsage) -> list[ImageSummary]:
        records = (await self.core.lifecycle(self.core.node, ImageListAll(), ImageRecords)).images
        shared = {u.id: u.shared_size for u in usage.images}
        counts: dict[str, int] = {}
        for rec in self.core.store.all():
            counts[rec.image_id] = counts.get(rec.image_id, 0) + 1
        items: list[ImageSummary] = []
        for img in sorted(records, key=lambda i: parse_ns(i.created), reverse=True):
            summary = image_summary(img, counts.get(img.id, 0))
            items.append(msgspec.structs.replace(summary, shared_size=shared.get(img.id, 0)))
        return items

    async def _containers(self, usage: LayerUsage) -> list[ContainerSummary]:
        listing = await self.queries.list_containers(ContainerList(all=True))
        image_sizes = {u.id: u.size for u in usage.images}
        out: list[ContainerSummary] = []
        for item in listing.items:
            rw = usage.writable.get(item.id, 0)
            out.append(
                msgspec.structs.replace(
                    item, size_rw=rw, size_root_fs=rw + image_sizes.get(item.image_id, 0)
                )
            )
        return out

    def _volumes(self) -> list[VolumeUsage]:
        volumes = self.core.volumes
        out: list[VolumeUsage] = []
        for vol in volumes.volumes.all():
            size = directory_size(volumes.volumes.data_path(vol.name))
            out.append(VolumeUsage(volume=vol, size=size, ref_count=len(volumes.users(vol.name))))
        return out

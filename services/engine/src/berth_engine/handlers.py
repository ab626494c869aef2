"""Wiring: which service object answers which EngineRequest command."""

from __future__ import annotations

from dataclasses import dataclass

from berth_contracts import engine as e
from berth_contracts.base import Ping, Pong
from berth_kit.rpc import RpcServer

from berth_engine.creating import CreateService
from berth_engine.images import ImageService
from berth_engine.info import InfoService
from berth_engine.pruning import PruneService
from berth_engine.queries import QueryService
from berth_engine.renaming import RenameService
from berth_engine.starting import StartService
from berth_engine.stopping import StopService
from berth_engine.volumes import VolumeService


@dataclass
class Services:
    create: CreateService
    start: StartService
    stop: StopService
    query: QueryService
    images: ImageService
    info: InfoService
    prune: PruneService
    rename: RenameService
    volumes: VolumeService | None = None


def register(server: RpcServer, s: Services, pong: Pong) -> None:
    server.handle(e.ContainerCreate, s.create.create)
    server.handle(e.ContainerStart, s.start.start)
    server.handle(e.ContainerResize, s.start.resize)
    server.handle(e.ContainerStop, s.stop.stop)
    server.handle(e.ContainerKill, s.stop.kill)
    server.handle(e.ContainerRemove, s.stop.remove)
    server.handle(e.ContainerGet, s.query.get)
    server.handle(e.ContainerList, s.query.list_containers)
    server.handle(e.ContainerResolve, s.query.resolve)
    server.handle(e.ContainerLogs, s.query.logs)
    server.handle(e.ContainerPrune, s.prune.prune)
    server.handle(e.ContainerRename, s.rename.rename)
    server.handle(e.ImageList, s.images.list_images)
    server.handle(e.ImageGet, s.images.get)
    server.handle(e.ImageRemove, s.images.remove)
    server.handle(e.ImageTag, s.images.tag)
    server.handle(e.ImageUpload, s.images.upload)
    server.handle(e.ImagePull, s.images.pull)
    server.handle(e.ImagePrune, s.images.prune)
    server.handle(e.ImageSave, s.images.forward)
    server.handle(e.ImagePush, s.images.forward)
    server.handle(e.RegistryLogin, s.images.forward)
    server.handle(e.DistributionInspect, s.images.forward)
    server.handle(e.SystemInfo, s.info.info)
    if s.volumes is not None:
        server.handle(e.VolumeCreate, s.volumes.create)
        server.handle(e.VolumeGet, s.volumes.get)
        server.handle(e.VolumeList, s.volumes.list_volumes)
        server.handle(e.VolumeRemove, s.volumes.remove)
        server.handle(e.VolumePrune, s.volumes.prune)

    async def ping(_: Ping) -> Pong:
        return pong

    server.handle(Ping, ping)

"""Wiring: which part of the engine answers which EngineRequest command, all in register().

The kit's RpcServer refuses to start when a member of EngineRequest has no handler here (it
answers Ping itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from berth_contracts import engine as e
from berth_contracts.archives import ContainerArchive
from berth_contracts.containerops import (
    ContainerPause,
    ContainerStats,
    ContainerTop,
    ContainerUnpause,
    ContainerUpdate,
)
from berth_contracts.eventlog import EventHistory
from berth_contracts.execs import ExecCreate, ExecGet, ExecResize, ExecStart
from berth_contracts.imaging import (
    ContainerChanges,
    ContainerCommit,
    ContainerExport,
    ImageCacheLookup,
    ImageHistoryGet,
    SystemDf,
)
from berth_contracts.networks import (
    NetworkConnect,
    NetworkCreate,
    NetworkDisconnect,
    NetworkGet,
    NetworkList,
    NetworkPrune,
    NetworkRemove,
)
from berth_kit.rpc import RpcServer

from berth_engine.containers.archiving import ArchiveService
from berth_engine.containers.creating import CreateService
from berth_engine.containers.execs import ExecService
from berth_engine.containers.pausing import PauseService
from berth_engine.containers.pruning import PruneService
from berth_engine.containers.queries import QueryService
from berth_engine.containers.renaming import RenameService
from berth_engine.containers.resources import ResourceService
from berth_engine.containers.starting import StartService
from berth_engine.containers.stopping import StopService
from berth_engine.diskusage import DiskUsageService
from berth_engine.eventlog import EventLog
from berth_engine.images.imaging import ImagingService
from berth_engine.images.service import ImageService
from berth_engine.info import InfoService
from berth_engine.networks.api import NetworkApi
from berth_engine.volumes.service import VolumeService


@dataclass
class Services:
    create: CreateService
    start: StartService
    stop: StopService
    query: QueryService
    prune: PruneService
    rename: RenameService
    pause: PauseService
    resources: ResourceService
    archive: ArchiveService
    execs: ExecService
    images: ImageService
    imaging: ImagingService
    networks: NetworkApi
    volumes: VolumeService
    info: InfoService
    disk_usage: DiskUsageService
    event_log: EventLog


def register(server: RpcServer, s: Services) -> None:
    # containers
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
    server.handle(ContainerPause, s.pause.pause)
    server.handle(ContainerUnpause, s.pause.unpause)
    server.handle(ContainerUpdate, s.resources.update)
    server.handle(ContainerTop, s.resources.top)
    server.handle(ContainerStats, s.resources.stats)
    server.handle(ContainerArchive, s.archive.archive)
    server.handle(ExecCreate, s.execs.create)
    server.handle(ExecGet, s.execs.get)
    server.handle(ExecStart, s.execs.start)
    server.handle(ExecResize, s.execs.resize)
    # images
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
    server.handle(ContainerCommit, s.imaging.commit)
    server.handle(ContainerChanges, s.imaging.changes)
    server.handle(ContainerExport, s.imaging.export)
    server.handle(ImageHistoryGet, s.imaging.history)
    server.handle(ImageCacheLookup, s.imaging.cache_lookup)
    # networks
    server.handle(NetworkCreate, s.networks.create)
    server.handle(NetworkGet, s.networks.get)
    server.handle(NetworkList, s.networks.list_networks)
    server.handle(NetworkRemove, s.networks.remove)
    server.handle(NetworkConnect, s.networks.connect)
    server.handle(NetworkDisconnect, s.networks.disconnect)
    server.handle(NetworkPrune, s.networks.prune)
    # volumes
    server.handle(e.VolumeCreate, s.volumes.create)
    server.handle(e.VolumeGet, s.volumes.get)
    server.handle(e.VolumeList, s.volumes.list_volumes)
    server.handle(e.VolumeRemove, s.volumes.remove)
    server.handle(e.VolumePrune, s.volumes.prune)
    # system
    server.handle(e.SystemInfo, s.info.info)
    server.handle(SystemDf, s.disk_usage.df)
    server.handle(EventHistory, s.event_log.history)

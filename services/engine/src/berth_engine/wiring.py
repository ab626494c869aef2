"""Wiring: which part of the engine answers which EngineRequest command, all in register().

The kit's RpcServer refuses to start when a member of EngineRequest has no handler here (it
answers Ping itself).
"""

from __future__ import annotations

from dataclasses import dataclass

from berth_contracts import archives, containerops, eventlog, execs, imaging, networks
from berth_contracts import engine as e
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
    server.handle(containerops.ContainerPause, s.pause.pause)
    server.handle(containerops.ContainerUnpause, s.pause.unpause)
    server.handle(containerops.ContainerUpdate, s.resources.update)
    server.handle(containerops.ContainerTop, s.resources.top)
    server.handle(containerops.ContainerStats, s.resources.stats)
    server.handle(archives.ContainerArchive, s.archive.archive)
    server.handle(execs.ExecCreate, s.execs.create)
    server.handle(execs.ExecGet, s.execs.get)
    server.handle(execs.ExecStart, s.execs.start)
    server.handle(execs.ExecResize, s.execs.resize)
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
    server.handle(imaging.ContainerCommit, s.imaging.commit)
    server.handle(imaging.ContainerChanges, s.imaging.changes)
    server.handle(imaging.ContainerExport, s.imaging.export)
    server.handle(imaging.ImageHistoryGet, s.imaging.history)
    server.handle(imaging.ImageCacheLookup, s.imaging.cache_lookup)
    # networks
    server.handle(networks.NetworkCreate, s.networks.create)
    server.handle(networks.NetworkGet, s.networks.get)
    server.handle(networks.NetworkList, s.networks.list_networks)
    server.handle(networks.NetworkRemove, s.networks.remove)
    server.handle(networks.NetworkConnect, s.networks.connect)
    server.handle(networks.NetworkDisconnect, s.networks.disconnect)
    server.handle(networks.NetworkPrune, s.networks.prune)
    # volumes
    server.handle(e.VolumeCreate, s.volumes.create)
    server.handle(e.VolumeGet, s.volumes.get)
    server.handle(e.VolumeList, s.volumes.list_volumes)
    server.handle(e.VolumeRemove, s.volumes.remove)
    server.handle(e.VolumePrune, s.volumes.prune)
    # system
    server.handle(e.SystemInfo, s.info.info)
    server.handle(imaging.SystemDf, s.disk_usage.df)
    server.handle(eventlog.EventHistory, s.event_log.history)

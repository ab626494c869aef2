"""`python -m berth_engine`: dockerd's role as a berth service."""

from __future__ import annotations

import logging
import os

from berth_contracts import subjects
from berth_contracts.archives import ContainerArchive
from berth_contracts.base import Pong
from berth_contracts.containerops import (
    ContainerPause,
    ContainerStats,
    ContainerTop,
    ContainerUnpause,
    ContainerUpdate,
)
from berth_contracts.engine import EngineRequest
from berth_contracts.eventlog import EventHistory
from berth_contracts.imaging import SystemDf
from berth_kit.service import ServiceContext, run_service

from berth_engine import settings
from berth_engine.archiving import ArchiveService
from berth_engine.core import EngineCore
from berth_engine.creating import CreateService
from berth_engine.diskusage import DiskUsageService
from berth_engine.eventlog import EventLog
from berth_engine.events import EventPublisher
from berth_engine.execs import ExecService, register_execs
from berth_engine.exits import ExitHandler
from berth_engine.handlers import Services, register
from berth_engine.health import HealthMonitor
from berth_engine.images import ImageService
from berth_engine.imaging import ImagingService, register_imaging
from berth_engine.info import InfoService
from berth_engine.netapi import NetworkApi, register_networks
from berth_engine.netstore import NetworkStore
from berth_engine.networking import NetworkService
from berth_engine.pausing import PauseService
from berth_engine.pruning import PruneService
from berth_engine.queries import QueryService
from berth_engine.renaming import RenameService
from berth_engine.resources import ResourceService
from berth_engine.restarts import Restarter
from berth_engine.starting import StartService
from berth_engine.stopping import StopService
from berth_engine.store import RecordStore
from berth_engine.volumes import VolumeService
from berth_engine.volumestore import VolumeStore

log = logging.getLogger("berth_engine")

SERVICE_NAME = "berth-engine"


async def engine_main(ctx: ServiceContext) -> None:
    settings.default_ulimits()  # a bad BERTH_DEFAULT_ULIMITS stops the engine here, as dockerd
    store = RecordStore(settings.db_path())
    log.info("loaded %d container records from %s", len(store.all()), settings.db_path())
    core = EngineCore(ctx.nc, store, ctx.rpc, EventPublisher(ctx.nc), ctx.node)
    exits = ExitHandler(core)
    starter = StartService(core, exits)
    core.restarter = Restarter(ctx.tg, starter.restart_run)
    core.volumes = VolumeService(VolumeStore(settings.volumes_dir()), store)
    core.networks = NetworkService(NetworkStore(settings.engine_dir() / "networks"), store)
    for rec in store.all():
        if rec.state.status == "restarting":
            core.restarter.resume(rec)
    event_log = EventLog()
    await event_log.subscribe(ctx.nc)
    # Exits first, then reconcile: an exit during start-up is either seen live or found by it.
    await exits.subscribe(ctx.nc, ctx.tg)
    ctx.tg.start_soon(exits.reconcile_loop, settings.RECONCILE_INTERVAL)
    server = ctx.server(subjects.ENGINE_RPC, EngineRequest, queue=subjects.ENGINE_QUEUE, limit=128)
    services = Services(
        create=CreateService(core),
        start=starter,
        stop=StopService(core, exits),
        query=QueryService(core),
        images=ImageService(core),
        info=InfoService(core),
        prune=PruneService(core),
        rename=RenameService(core),
        volumes=core.volumes,
    )
    register(server, services, Pong(service=SERVICE_NAME, pid=os.getpid(), node=ctx.node))
    server.handle(ContainerArchive, ArchiveService(core).archive)
    register_networks(server, NetworkApi(core, core.networks))
    execs = ExecService(core, ctx.tg)
    core.running_execs = execs.running_ids
    register_execs(server, execs)
    await execs.subscribe(ctx.nc)
    await HealthMonitor(core, execs, ctx.tg).subscribe(ctx.nc)
    server.handle(EventHistory, event_log.history)
    pauses = PauseService(core)
    server.handle(ContainerPause, pauses.pause)
    server.handle(ContainerUnpause, pauses.unpause)
    register_imaging(server, ImagingService(core, pauses))
    server.handle(SystemDf, DiskUsageService(core, services.query).df)
    resources = ResourceService(core)
    server.handle(ContainerUpdate, resources.update)
    server.handle(ContainerTop, resources.top)
    server.handle(ContainerStats, resources.stats)


def main() -> None:
    run_service(SERVICE_NAME, engine_main)


if __name__ == "__main__":
    main()

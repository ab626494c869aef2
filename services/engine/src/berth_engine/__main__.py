"""`python -m berth_engine`: dockerd's role as a berth service."""

from __future__ import annotations

import logging

from berth_contracts import subjects
from berth_contracts.engine import EngineRequest
from berth_kit.service import ServiceContext, run_service

from berth_engine import settings
from berth_engine.containers.archiving import ArchiveService
from berth_engine.containers.creating import CreateService
from berth_engine.containers.execs import ExecService
from berth_engine.containers.exits import ExitHandler
from berth_engine.containers.health import HealthMonitor
from berth_engine.containers.pausing import PauseService
from berth_engine.containers.pruning import PruneService
from berth_engine.containers.queries import QueryService
from berth_engine.containers.renaming import RenameService
from berth_engine.containers.resources import ResourceService
from berth_engine.containers.restarts import Restarter
from berth_engine.containers.starting import StartService
from berth_engine.containers.stopping import StopService
from berth_engine.containers.store import RecordStore
from berth_engine.core import EngineCore
from berth_engine.diskusage import DiskUsageService
from berth_engine.eventlog import EventLog
from berth_engine.events import EventPublisher
from berth_engine.images.imaging import ImagingService
from berth_engine.images.service import ImageService
from berth_engine.info import InfoService
from berth_engine.networks.api import NetworkApi
from berth_engine.networks.controller import NetworkService
from berth_engine.networks.store import NetworkStore
from berth_engine.swarm.worker import SwarmWorker
from berth_engine.volumes.service import VolumeService
from berth_engine.volumes.store import VolumeStore
from berth_engine.wiring import Services, register

log = logging.getLogger("berth_engine")

SERVICE_NAME = "berth-engine"


async def engine_main(ctx: ServiceContext) -> None:
    settings.default_ulimits()  # a bad BERTH_DEFAULT_ULIMITS stops the engine here, as dockerd
    store = RecordStore(settings.db_path())
    log.info("loaded %d container records from %s", len(store.all()), settings.db_path())
    # The parts first, then the core that holds them, then the services built on the core.
    volumes = VolumeService(VolumeStore(settings.volumes_dir()), store)
    networks = NetworkService(NetworkStore(settings.engine_dir() / "networks"), store)
    # Restarts go through the start path, which needs the core: bound here, called later.
    restarter = Restarter(ctx.tg, lambda rec: starter.restart_run(rec))
    core = EngineCore(
        ctx.nc, store, ctx.rpc, EventPublisher(ctx.nc), ctx.node,
        volumes=volumes, networks=networks, restarter=restarter,
    )  # fmt: skip
    exits = ExitHandler(core)
    starter = StartService(core, exits)
    for rec in store.all():
        if rec.state.status == "restarting":
            restarter.resume(rec)
    event_log = EventLog()
    await event_log.subscribe(ctx.nc)
    # Exits first, then reconcile: an exit during start-up is either seen live or found by it.
    await exits.subscribe(ctx.nc, ctx.tg)
    ctx.tg.start_soon(exits.reconcile_loop, settings.RECONCILE_INTERVAL)
    execs = ExecService(core, ctx.tg)
    core.running_execs = execs.running_ids
    await execs.subscribe(ctx.nc)
    await HealthMonitor(core, execs, ctx.tg).subscribe(ctx.nc)
    query = QueryService(core)
    pauses = PauseService(core)
    services = Services(
        create=CreateService(core),
        start=starter,
        stop=StopService(core, exits),
        query=query,
        prune=PruneService(core),
        rename=RenameService(core),
        pause=pauses,
        resources=ResourceService(core),
        archive=ArchiveService(core),
        execs=execs,
        images=ImageService(core),
        imaging=ImagingService(core, pauses),
        networks=NetworkApi(core, networks),
        volumes=volumes,
        info=InfoService(core),
        disk_usage=DiskUsageService(core, query),
        event_log=event_log,
    )
    server = ctx.server(subjects.ENGINE_RPC, EngineRequest, queue=subjects.ENGINE_QUEUE, limit=128)
    register(server, services)
    worker = SwarmWorker(core, ctx.rpc, services.create, starter, services.stop)
    await worker.subscribe(ctx.nc)
    ctx.tg.start_soon(worker.run, ctx.tg)


def main() -> None:
    run_service(SERVICE_NAME, engine_main)


if __name__ == "__main__":
    main()

"""Wiring: which service method answers which EngineRequest command."""

from __future__ import annotations

from berth_contracts import engine as e
from berth_contracts.base import Ping, Pong
from berth_kit.rpc import RpcServer

from berth_engine.containers import ContainerService
from berth_engine.images import ImageService
from berth_engine.info import InfoService


def register(
    server: RpcServer,
    containers: ContainerService,
    images: ImageService,
    info: InfoService,
    pong: Pong,
) -> None:
    server.handle(e.ContainerCreate, containers.create)
    server.handle(e.ContainerStart, containers.start)
    server.handle(e.ContainerStop, containers.stop)
    server.handle(e.ContainerKill, containers.kill)
    server.handle(e.ContainerRemove, containers.remove)
    server.handle(e.ContainerGet, containers.get)
    server.handle(e.ContainerList, containers.list)
    server.handle(e.ContainerResolve, containers.resolve)
    server.handle(e.ContainerLogs, containers.logs)
    server.handle(e.ContainerResize, containers.resize)
    server.handle(e.ImageList, images.list)
    server.handle(e.ImageGet, images.get)
    server.handle(e.ImageRemove, images.remove)
    server.handle(e.ImageTag, images.tag)
    server.handle(e.ImageUpload, images.upload)
    server.handle(e.SystemInfo, info.info)

    async def ping(_: Ping) -> Pong:
        return pong

    server.handle(Ping, ping)

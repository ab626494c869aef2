"""Areas berth does not implement yet, answered in Docker's error shape instead of a bare 404.

`docker inspect` skips errors that say "not supported", so 501s here keep its fall-through
working. Swarm paths say 503 with dockerd's own "not a swarm manager" words, as podman does.
BuildKit's /session and /grpc are 404 so clients fall back to the classic builder.
"""

from __future__ import annotations

from aiohttp import web
from berth_contracts.engine import ContainerRef, ContainerResolve
from berth_contracts.errors import NotFound, NotImplementedByBerth, Unavailable

from berth_gateway.backend import backend
from berth_gateway.routes.table import HandlerFn, Route, not_supported

SWARM_MESSAGE = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)


async def no_swarm(request: web.Request) -> web.Response:
    raise Unavailable(SWARM_MESSAGE)


async def no_swarm_mode(request: web.Request) -> web.Response:
    raise Unavailable("swarm mode is not supported by berth yet")


def container_area(what: str) -> HandlerFn:
    """Unsupported, but about a container: a missing container is still "No such container"."""

    async def handler(request: web.Request) -> web.Response:
        await backend(request).call(ContainerResolve(ref=request.match_info["id"]), ContainerRef)
        raise NotImplementedByBerth(f"{what} is not supported by berth yet")

    return handler


async def page_not_found(request: web.Request) -> web.Response:
    raise NotFound("page not found")


_CONTAINER_AREAS = {
    "attach/ws": "attaching over websockets",
}

_AREAS = {
    "plugins": "plugins",
    "system": "system data usage and pruning",
}

_SWARM = ("swarm", "nodes", "services", "tasks", "secrets", "configs")


def _routes() -> list[Route]:
    routes: list[Route] = [
        Route("*", "/session", page_not_found),
        Route("*", "/grpc", page_not_found),
    ]
    for suffix, what in _CONTAINER_AREAS.items():
        routes.append(Route("*", f"/containers/{{id:.*}}/{suffix}", container_area(what)))
    for area, what in _AREAS.items():
        routes.append(Route("*", f"/{area}", not_supported(what)))
        routes.append(Route("*", f"/{area}/{{tail:.*}}", not_supported(what)))
    routes.append(Route("POST", "/swarm/init", no_swarm_mode))
    routes.append(Route("POST", "/swarm/join", no_swarm_mode))
    for area in _SWARM:
        routes.append(Route("*", f"/{area}", no_swarm))
        routes.append(Route("*", f"/{area}/{{tail:.*}}", no_swarm))
    return routes


ROUTES = _routes()

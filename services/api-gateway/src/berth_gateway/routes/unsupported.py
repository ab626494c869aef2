"""Areas berth does not implement yet, answered in Docker's error shape instead of a bare 404.

`docker inspect` skips errors that say "not supported", so 501s here keep its fall-through
working.
BuildKit's /session and /grpc are 404 so clients fall back to the classic builder.
"""

from __future__ import annotations

from aiohttp import web
from berth_contracts.engine import ContainerRef, ContainerResolve
from berth_contracts.errors import NotFound, NotImplementedByBerth

from berth_gateway.backend import backend
from berth_gateway.routes.table import HandlerFn, Route, not_supported


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
    return routes


ROUTES = _routes()

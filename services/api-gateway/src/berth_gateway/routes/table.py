"""A route: method, path template (aiohttp syntax) and handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from berth_contracts.errors import BerthError, NotImplementedByBerth

HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: HandlerFn


def not_supported(what: str, status_error: type[BerthError] | None = None) -> HandlerFn:
    """A handler for an area berth does not implement: Docker-shaped 501 by default."""
    error = status_error or NotImplementedByBerth

    async def handler(request: web.Request) -> web.StreamResponse:
        raise error(f"{what} is not supported by berth yet")

    return handler

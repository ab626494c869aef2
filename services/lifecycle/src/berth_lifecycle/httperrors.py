"""Errors of lifecycle's HTTP listener (uploads, pulls, archives) in Docker's shape.

The gateway relays these answers to Docker clients: a handler's BerthError, and any unexpected
exception (logged with its traceback), become `{"message": ...}` with a status, never aiohttp's
"Server got itself in trouble" page. Once a stream has started there is no status left to send:
the error is logged and the connection dropped, which the reader sees as a truncated stream.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from berth_contracts.errors import BerthError

log = logging.getLogger(__name__)

_PREPARED = web.RequestKey("berth_lifecycle_prepared", bool)


async def _mark_prepared(request: web.Request, response: web.StreamResponse) -> None:
    request[_PREPARED] = True


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionError):
        raise
    except BerthError as exc:
        if request.get(_PREPARED):
            raise
        return web.json_response({"message": exc.message}, status=exc.http_status)
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        if request.get(_PREPARED):
            raise
        return web.json_response({"message": f"{type(exc).__name__}: {exc}"}, status=500)


def install(app: web.Application) -> None:
    app.middlewares.append(json_errors)
    app.on_response_prepare.append(_mark_prepared)

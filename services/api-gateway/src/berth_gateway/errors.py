"""Turning every failure into Docker's error shape: status from the error kind, {"message"}."""

from __future__ import annotations

import logging

import nats.errors
from aiohttp import web
from aiohttp.typedefs import Handler
from berth_contracts.errors import HTTP_STATUS, BerthError

from berth_gateway.responses import error_response

log = logging.getLogger(__name__)

PAGE_NOT_FOUND = "page not found"


def response_for(exc: BerthError) -> web.Response:
    return error_response(HTTP_STATUS.get(exc.kind, 500), exc.message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BerthError as exc:
        return response_for(exc)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        # moby answers unknown paths and unknown methods the same way.
        return error_response(404, PAGE_NOT_FOUND)
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason)
    except ConnectionError:
        raise
    except nats.errors.Error as exc:
        # NATS down or a subscription refused: the daemon's insides are unreachable for now.
        return error_response(503, f"berth message bus unavailable: {exc}")
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"{type(exc).__name__}: {exc}")

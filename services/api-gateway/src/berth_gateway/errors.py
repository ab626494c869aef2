"""Turning every failure into Docker's error shape: status from the error kind, {"message"}.

An error raised after a response has started (stream headers sent, or the connection hijacked)
cannot become an error response any more; it ends the stream that is under way instead.
"""

from __future__ import annotations

import logging

import nats.errors
from aiohttp import web
from aiohttp.typedefs import Handler
from berth_contracts.errors import HTTP_STATUS, BerthError

from berth_gateway.headers import PREPARED
from berth_gateway.hijack import HIJACKED, HijackedResponse
from berth_gateway.responses import error_response

log = logging.getLogger(__name__)

PAGE_NOT_FOUND = "page not found"


def response_for(exc: BerthError) -> web.Response:
    return error_response(HTTP_STATUS.get(exc.kind, 500), exc.message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        started = _already_answered(request)
        if started is not None:
            if not isinstance(exc, ConnectionError):
                log.warning("%s %s failed mid-stream: %r", request.method, request.path, exc)
            return started
        if isinstance(exc, ConnectionError):
            raise  # the client is gone: nobody to answer
        return _error_answer(request, exc)


def _already_answered(request: web.Request) -> web.StreamResponse | None:
    if request.get(HIJACKED):
        if request.transport is not None:
            request.transport.close()
        return HijackedResponse()
    prepared = request.get(PREPARED)
    return prepared if isinstance(prepared, web.StreamResponse) else None


def _error_answer(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, BerthError):
        return response_for(exc)
    if isinstance(exc, web.HTTPNotFound | web.HTTPMethodNotAllowed):
        # moby answers unknown paths and unknown methods the same way.
        return error_response(404, PAGE_NOT_FOUND)
    if isinstance(exc, web.HTTPException):
        return error_response(exc.status, exc.reason)
    if isinstance(exc, nats.errors.Error):
        # NATS down or a subscription refused: the daemon's insides are unreachable for now.
        return error_response(503, f"berth message bus unavailable: {exc}")
    log.exception("%s %s failed", request.method, request.path, exc_info=exc)
    return error_response(500, f"{type(exc).__name__}: {exc}")

"""The aiohttp application: middlewares, common headers and the routes of endpoints.py.

Every route is registered twice, unversioned and under /v{version}, as moby does; the version
middleware checks the prefix and stores the version the request speaks in request[API_VERSION_KEY].
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from berth_gateway import versions
from berth_gateway.backend import BACKEND_KEY, Backend
from berth_gateway.csrf import allowed_origins, json_body_middleware, origin_middleware
from berth_gateway.endpoints import ROUTES
from berth_gateway.errors import error_middleware
from berth_gateway.headers import add_common_headers
from berth_gateway.tracing import tracing_middleware
from berth_gateway.versions import API_VERSION_KEY

VERSION_PREFIX = "/v{version:[0-9][0-9.]*}"


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[API_VERSION_KEY] = versions.check(request.match_info.get("version"))
    return await handler(request)


def build_app(
    backend: Backend | None, allow_origins: frozenset[str] | None = None
) -> web.Application:
    """allow_origins: browser origins let in (csrf.py); None reads BERTH_API_ALLOW_ORIGINS."""
    origins = allowed_origins() if allow_origins is None else allow_origins
    # client_max_size: bodies that are streamed (load/import) are never read whole; this
    # bounds the JSON bodies that are.
    app = web.Application(
        middlewares=[
            tracing_middleware,
            error_middleware,
            origin_middleware(origins),
            version_middleware,
            json_body_middleware,
        ],
        client_max_size=16 * 1024 * 1024,
    )
    if backend is not None:
        app[BACKEND_KEY] = backend
    app.on_response_prepare.append(add_common_headers)
    for route in ROUTES:
        for prefix in ("", VERSION_PREFIX):
            app.router.add_route(route.method, prefix + route.path, route.handler)
    return app

"""One SERVER span per HTTP request, parented by the client's `traceparent` header if any."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from berth_kit.tracing import extract
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

TRACER_NAME = "berth-api-gateway"


def route_template(request: web.Request) -> str:
    """The matched route without the optional /v{version} prefix, e.g. /containers/{id}/json."""
    info = request.match_info.route.resource
    if info is None:
        return "(unmatched)"  # unknown paths would make one span name per path
    template = info.canonical
    if template.startswith("/v{version"):
        template = template[template.index("}") + 1 :]
    return template


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tracer = trace.get_tracer(TRACER_NAME)
    carrier = {name.lower(): value for name, value in request.headers.items()}
    route = route_template(request)
    with tracer.start_as_current_span(
        f"{request.method} {route}",
        context=extract(carrier),
        kind=SpanKind.SERVER,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.route", route)
        span.set_attribute("url.path", request.path)
        if "version" in request.match_info:
            span.set_attribute("docker.api_version", request.match_info["version"])
        # The object a request is about, as the client named it: what one searches traces by.
        if "id" in request.match_info:
            span.set_attribute("docker.container.ref", request.match_info["id"])
        if "name" in request.match_info:
            span.set_attribute("docker.object.ref", request.match_info["name"])
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response

"""Headers every response carries, as moby's version and experimental middlewares set them."""

from __future__ import annotations

from aiohttp import web

from berth_gateway.versions import API_VERSION, SERVER_HEADER

PREPARED = web.RequestKey("berth.prepared_response", web.StreamResponse)

COMMON_HEADERS: dict[str, str] = {
    "Api-Version": API_VERSION,
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": SERVER_HEADER,
}


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for plain and streaming responses alike."""
    for name, value in COMMON_HEADERS.items():
        response.headers[name] = value
    # Remember the response that went out: an error after this point cannot become a new
    # response (see errors.py), only the end of this one.
    request[PREPARED] = response

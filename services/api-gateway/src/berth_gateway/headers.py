"""Headers every response carries, as moby's version and experimental middlewares set them."""

from __future__ import annotations

from aiohttp import web

from berth_gateway.versions import API_VERSION, SERVER_HEADER

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
